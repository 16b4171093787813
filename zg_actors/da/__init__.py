"""0G DA (docs/spec/da.md): blobs, quorums, certificates, the `da` chain module, sampling.

Pure modules (no Ray): `params` (constants, BlobStatus), `blob` (layout, slice
and data roots, headers), `quorum` (epoch tickets, quorums, assignment
checks), `certificate` (batches, DA certificates), `sampling` (qualities,
difficulty, answers), `module` (the chain module), `dispersal` (batching,
routing and nonces, slices per signer, signature tallies), `node_store` (a DA
node's checks and LMDB records), `disperser_store` (a disperser's blob records),
`keys` (devnet identities). The Ray shell: `node_actor` (DANode),
`disperser_actor` (Disperser) with `disperser_networks` (its txs on each network)
and `disperser_nodes` (its calls to the DA nodes),
`chains` (a chain client per network, the epochs each recorded), and `deploy`
(deploy_da, open_epoch, teardown_da); `bench` and `demo` drive a deployment
through the gRPC gateway (zg_actors.rpc).
"""
