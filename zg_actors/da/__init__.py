"""0G DA (docs/spec/da.md): blobs, quorums, certificates, the `da` chain module, sampling.

Pure modules (no Ray): `params` (constants, BlobStatus), `blob` (layout, slice
and data roots, headers), `quorum` (epoch tickets, quorums, assignment
checks), `certificate` (batches, DA certificates), `sampling` (qualities,
difficulty, answers), `module` (the chain module), `dispersal` (batching,
routing, slices per signer), `keys` (devnet identities). The Ray shell
(DANode, Disperser, deploy_da) is `actors`; `bench` and `demo` drive a
deployment through the gRPC gateway (zg_actors.rpc).
"""
