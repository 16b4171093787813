"""0G DA on a real local Ray cluster, in one deployment (PoP registration is slow):
gRPC dispersal to FINALIZED and retrieval, error codes, a corrupted slice, live
scaling to a new network, DA nodes going down or slow (blobs refused once too few are
up), and a disperser restart that resumes its unfinished blobs."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import ray

from zg_actors import runtime
from zg_actors.chain.tx import make_tx
from zg_actors.crypto import bls
from zg_actors.crypto.accounts import Account
from zg_actors.crypto.encoding import decode, encode
from zg_actors.da.blob import BlobHeader, commit_slices, encode_blob
from zg_actors.da.certificate import Batch, DACertificate, member_bitmap
from zg_actors.da.demo import run_da_demo
from zg_actors.da.deploy import advance_epoch, deploy_da, teardown_da
from zg_actors.da.dispersal import (
    bad_encoding_proof,
    slices_for,
    slots_by_signer,
    verified_slices,
)
from zg_actors.da.errors import InvalidBlob
from zg_actors.da.keys import da_signer_identity, disperser_account
from zg_actors.da.node_actor import da_node_name
from zg_actors.da.params import BlobStatus, signing_threshold
from zg_actors.da.quorum import EpochRegistry, Quorum
from zg_actors.rpc.client import DisperserClient
from zg_actors.rpc.errors import RpcError, RpcInvalidArgument, RpcNotFound, RpcUnavailable
from zg_actors.rpc.gateway import deploy_gateway
from zg_actors.store import Store

from .misbehaving import SlowDANode

pytestmark = pytest.mark.integration


def blob(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def wait_status(disperser, request_id: bytes, wanted: set[BlobStatus],
                timeout: float = 90) -> int:
    seen = {}

    def done() -> bool:
        seen["status"] = ray.get(disperser.status.remote(request_id))["status"]
        return seen["status"] in wanted

    assert runtime.wait_for(done, timeout, 0.3), f"blob stuck at {BlobStatus(seen['status'])}"
    return seen["status"]


def wait_client_status(client: DisperserClient, request_id: bytes, timeout: float = 120) -> str:
    """The blob's final status through the gateway, with its error if it has one ("FAILED:
    why"); errors while a disperser restarts are retried."""
    seen: dict = {}

    def final() -> bool:
        try:
            seen.update(client.get_blob_status(request_id))
        except RpcError:
            return False
        return seen["status"] in ("FINALIZED", "FAILED", "INSUFFICIENT_SIGNATURES")

    assert runtime.wait_for(final, timeout, 0.3), f"blob stuck at {seen.get('status')}"
    return f"{seen['status']}: {seen['error']}" if seen["error"] else seen["status"]


def disperse_together(client: DisperserClient, blobs: list[np.ndarray]) -> list[bytes]:
    """DisperseBlob for each blob at once (8 calls open); their request ids, in order."""
    with ThreadPoolExecutor(8) as senders:
        answers = list(senders.map(client.disperse_blob, [b.tobytes() for b in blobs]))
    assert {status for status, _ in answers} == {BlobStatus.PROCESSING}
    return [request_id for _, request_id in answers]


def corrupt_slices(node, blob_key: bytes) -> int:
    """Flip a byte of every slice the node stores for the blob, straight in its LMDB (one
    record per blob: all n slice roots, then the node's rows back to back)."""
    path = ray.get(node.status.remote())["path"]
    held = len(ray.get(node.get_slices.remote(blob_key)))
    store = Store(path, ["slices", "blobs", "signed"], 64)
    roots_raw, rows_raw = decode(store.get("slices", blob_key))
    rows = bytearray(rows_raw)
    for start in range(0, len(rows), len(rows) // held):
        rows[start] ^= 0xFF
    store.put("slices", blob_key, encode([roots_raw, bytes(rows)]))
    store.close()
    return held


def _slots_of(node, blob_key: bytes) -> list[int] | None:
    try:
        return sorted(ray.get(node.get_slices.remote(blob_key), timeout=10))
    except Exception:  # still restarting
        return None


def _pruned(node, before: float) -> int | None:
    """node.prune(before), or None while Ray still reports the node as restarting."""
    try:
        return ray.get(node.prune.remote(before), timeout=10)
    except ray.exceptions.RayError:
        return None


def send_da_tx(validator, account, network_id: int, method: str, *args) -> None:
    nonce = ray.get(validator.account.remote(account.address))["nonce"]
    tx = make_tx(account, network_id, nonce, "da", method, list(args))
    assert ray.get(validator.submit_txs.remote([tx.encoded])) == [None]


def blob_status(validator, key: bytes) -> int:
    return ray.get(validator.query.remote("da", "blob", (key,)))["status"]


def certify_wrong_encoding(config, validator, nodes) -> BlobHeader:
    """Act as a cheating disperser: commit to slices that are not a codeword, get the
    DA nodes' signatures (they cannot tell) and put the certificate on network 0."""
    da, seed = config.da, config.devnet.key_seed
    data = blob(40_000, 99).tobytes()
    slices = encode_blob(data, da.k, da.n).slices.copy()
    slices[da.n - 1, :8] ^= 0xFF
    cheat = commit_slices(slices, da.k, len(data))
    header = BlobHeader(cheat.data_root, len(data), 0, 0, 0)
    batch = Batch(0, 0, 0, (header,))
    quorum = Quorum(0, tuple(ray.get(validator.query.remote("da", "quorums", (0,)))[0]))
    account = disperser_account(seed, 0)
    by_address = {da_signer_identity(seed, i).address: i for i in range(da.nodes)}
    registry_raw = ray.get(validator.query.remote("da", "epoch", (0,)))
    registry = EpochRegistry.decode(registry_raw)
    signatures = {}
    for signer, slots in slots_by_signer(quorum).items():
        node = nodes[by_address[registry.signers[signer].address]]
        signatures[signer] = ray.get(node.store_batch.remote(
            0, 0, 0, [header.encode()], slots, [slices_for(cheat, slots)],
            [cheat.roots_bytes], account.sign_hash(batch.sign_bytes)))
    signers = sorted(signatures)
    cert = DACertificate(batch, member_bitmap(quorum, signers),
                         bls.aggregate([signatures[i] for i in signers]))
    send_da_tx(validator, account, 0, "certify", cert.encode())
    return header


def test_da_end_to_end(deployment) -> None:
    d, config = deployment
    config = config.replace(**{"da.gateway_port": 0})
    ray.get(d.manager.launch_network.remote(4))
    da = deploy_da(config)  # keep the handles: the actors are not detached
    gateway, where = deploy_gateway(config)  # kept: a dropped handle would end the actor
    disperser, nodes = da["dispersers"][0], da["nodes"]
    try:
        # Through the gateway: disperse, follow to FINALIZED, retrieve by header.
        payloads = [blob(1_000, 1).tobytes(), blob(1_000_000, 2).tobytes()]
        with DisperserClient(f"127.0.0.1:{where['port']}") as client:
            ids = []
            for data in payloads:
                status, request_id = client.disperse_blob(data)
                assert status == BlobStatus.PROCESSING
                ids.append(request_id)
            for request_id, data in zip(ids, payloads, strict=True):
                assert runtime.wait_for(lambda r=request_id: client.get_blob_status(r)[
                    "status"] == "FINALIZED", 90, 0.3)
                info = client.get_blob_status(request_id)
                assert info["size"] == len(data)
                assert client.retrieve_blob(info["storage_root"], info["epoch"],
                                            info["quorum_id"]) == data
            # Requests that arrive together go to the disperser as one group (one call,
            # one LMDB sync); each still gets its own request id.
            with ThreadPoolExecutor(6) as senders:
                together = list(senders.map(client.disperse_blob,
                                            [blob(5_000, 50 + i).tobytes() for i in range(6)]))
            assert {status for status, _ in together} == {BlobStatus.PROCESSING}
            assert len({request_id for _, request_id in together}) == 6
            with pytest.raises(RpcInvalidArgument):
                client.disperse_blob(b"")
            with pytest.raises(RpcInvalidArgument) as too_big:
                client.disperse_blob(b"\0" * (config.da.max_blob_bytes + 1))
            assert too_big.value.details["size"] == config.da.max_blob_bytes + 1
            with pytest.raises(RpcNotFound):
                client.get_blob_status(b"\x01" * 32)
            # Ids that cannot name a blob are refused before any lookup, quoting a prefix.
            for bad_id in (b"", b"\x07" * (1 << 20)):
                with pytest.raises(RpcInvalidArgument) as bad:
                    client.get_blob_status(bad_id)
                assert bad.value.details["length"] == len(bad_id)
            with pytest.raises(RpcNotFound):
                client.retrieve_blob(b"\x02" * 32, 0, 0)

        # In a group, a refused blob gets its typed error and the others go on.
        good, empty = ray.get(disperser.disperse_many.remote([blob(2_000, 60),
                                                               np.zeros(0, np.uint8)]))
        assert good["status"] == BlobStatus.PROCESSING
        assert isinstance(empty, InvalidBlob) and empty.details["size"] == 0
        wait_status(disperser, good["request_id"], {BlobStatus.FINALIZED})

        # A corrupted slice on a DA node's disk is skipped at retrieval.
        assert corrupt_slices(nodes[0], ids[1]) > 0
        known = ray.get(disperser.status.remote(ids[1]))
        header = BlobHeader(known["data_root"], known["size"], known["epoch"],
                            known["quorum_id"], known["network_id"])
        served = ray.get(nodes[0].get_slices.remote(ids[1]))
        assert served and verified_slices(header, config.da.n, served) == {}  # all bad now
        assert ray.get(disperser.retrieve.remote(ids[1])).tobytes() == payloads[1]

        # A DA node that crashes comes back with what it signed for, from its LMDB store.
        held = sorted(ray.get(nodes[1].get_slices.remote(ids[0])))
        runtime.kill_actor(nodes[1], restart=True)
        assert runtime.wait_for(lambda: _slots_of(nodes[1], ids[0]) == held, 60, 0.5)
        # Past the retention window a node deletes what it stored; its index of stored
        # blobs was rebuilt from LMDB after the restart.
        assert held and runtime.wait_for(lambda: _pruned(nodes[1], time.time() - 3600) == 0,
                                         60, 0.5)
        # Every blob so far: on the devnet keys, node 1 holds slots in every quorum.
        dispersed = len(payloads) + len(together) + 1
        assert ray.get(nodes[1].prune.remote(time.time() + 1)) == dispersed
        assert ray.get(nodes[1].get_slices.remote(ids[0])) == {}

        # The next epoch: new tickets and quorums; new blobs are certified in it.
        assert advance_epoch(nodes, [disperser]) == 1
        in_epoch_1 = ray.get(disperser.disperse.remote(blob(10_000, 30)))["request_id"]
        wait_status(disperser, in_epoch_1, {BlobStatus.FINALIZED})
        assert ray.get(disperser.status.remote(in_epoch_1))["epoch"] == 1

        # A network launched during dispersal starts taking certificates.
        new_net = ray.get(d.manager.launch_network.remote(4))["network_id"]
        assert runtime.wait_for(lambda: new_net in ray.get(disperser.stats.remote())["networks"],
                                90)
        more = [ray.get(disperser.disperse.remote(blob(20_000, 10 + i)))["request_id"]
                for i in range(3)]
        for request_id in more:
            wait_status(disperser, request_id, {BlobStatus.FINALIZED})
        assert new_net in {ray.get(disperser.status.remote(r))["network_id"] for r in more}
        assert ray.get(disperser.stats.remote())["certificates"].get(new_net, 0) >= 1

        # Epochs also rotate on a timer: the epoch number advances by itself, quorums are
        # re-drawn, and blobs certified in the new epoch verify on both networks.
        validator = list(ray.get(d.manager.validator_handles.remote(0)).values())[0]
        before = ray.get(disperser.stats.remote())["epoch"]
        ray.get(disperser.set_epoch_interval.remote(2.0))
        try:
            assert runtime.wait_for(lambda: ray.get(disperser.stats.remote())["epoch"] > before,
                                    120, 0.5)
        finally:
            ray.get(disperser.set_epoch_interval.remote(0))
        assert runtime.wait_for(lambda: not ray.get(disperser.stats.remote())["rotating"], 120)
        rotated = ray.get(disperser.stats.remote())["epoch"]
        assert ray.get(ray.get_actor("staking").da_current_epoch.remote()) == rotated
        assert ray.get(validator.query.remote("da", "quorums", (rotated,))) != ray.get(
            validator.query.remote("da", "quorums", (before,)))
        after = [ray.get(disperser.disperse.remote(blob(15_000, 40 + i)))["request_id"]
                 for i in range(4)]
        for request_id in after:
            wait_status(disperser, request_id, {BlobStatus.FINALIZED})
            assert ray.get(disperser.status.remote(request_id))["epoch"] == rotated

        # A wrong encoding is caught: k slices re-encode to another data root, the blob
        # becomes FAILED and the disperser's deposit is slashed to the prover.
        def deposit_now() -> int:
            return ray.get(validator.query.remote("da", "deposit", (
                disperser_account(config.devnet.key_seed, 0).address,)))

        deposit = deposit_now()
        cheat = certify_wrong_encoding(config, validator, nodes)
        assert runtime.wait_for(lambda: blob_status(validator, cheat.key) in (
            BlobStatus.CONFIRMED, BlobStatus.FINALIZED), 60)
        served = {}
        for node in nodes:
            served.update(ray.get(node.get_slices.remote(cheat.key)))
        prover = Account.from_seed(b"bad-encoding prover")  # fee 0: needs no funds
        send_da_tx(validator, prover, 0, "prove_bad_encoding", cheat.key,
                   bad_encoding_proof(served, config.da.k))
        assert runtime.wait_for(lambda: blob_status(validator, cheat.key)
                                == BlobStatus.FAILED, 60)
        slashed = deposit * config.da.slash_fraction_bps // 10_000
        assert ray.get(validator.account.remote(prover.address))["balance"] == slashed
        # The disperser tops its deposit up: below the minimum, the network would refuse
        # its certificates and the blobs it acknowledged there would time out.
        assert runtime.wait_for(lambda: deposit_now() >= config.da.disperser_deposit, 30)

        # DA nodes answer sampling rounds for what they hold and get paid on the network.
        def sampling_rewards() -> int:
            return sum(ray.get(validator.account.remote(da_signer_identity(
                config.devnet.key_seed, i).address))["balance"] for i in range(config.da.nodes))

        assert runtime.wait_for(lambda: sampling_rewards() > 0, 60, 1.0)

        with DisperserClient(f"127.0.0.1:{where['port']}") as client:
            # One of four DA nodes down (<= 1/3 of the slots): the other three certify
            # every batch, including those sent while its calls were failing.
            ray.kill(nodes[3], no_restart=True)
            one_down = disperse_together(client, [blob(30_000, 100 + i) for i in range(24)])
            for request_id in one_down:
                assert wait_client_status(client, request_id) == "FINALIZED"
            # One down leaves no slack (72 of 96 slots, 64 needed): a live node slower than
            # the signature deadline must not fail the batch; it certifies once it signs.
            ray.kill(nodes[2], no_restart=True)

            def nodes_down() -> dict:
                return ray.get(disperser.stats.remote())["nodes_down"]

            assert runtime.wait_for(lambda: 2 in nodes_down(), 30, 0.5)  # a probe saw it
            nodes[2] = SlowDANode.options(name=da_node_name(2), num_cpus=0.05).remote(
                config.to_dict(), 2, str(Path(config.data_dir).resolve()),
                config.da.signature_deadline_s + 2)
            assert runtime.wait_for(lambda: 2 not in nodes_down(), 30, 0.5)  # found back
            [late] = disperse_together(client, [blob(30_000, 150)])
            assert wait_client_status(client, late) == "FINALIZED"
            # Status counts are kept as statuses change; a restarted disperser recounts its
            # LMDB records and must find the same.
            counted = ray.get(disperser.stats.remote())["statuses"]
            assert counted.get("FINALIZED", 0) >= 30 and "PROCESSING" not in counted, counted
            # Blobs still PROCESSING when their disperser restarts were persisted before
            # DisperseBlob answered: the new process resumes them to FINALIZED, and the
            # gateway, whose cache saw them PROCESSING, answers the new status.
            cut_off = disperse_together(client, [blob(30_000, 200 + i) for i in range(8)])
            assert "PROCESSING" in {client.get_blob_status(r)["status"] for r in cut_off}
            runtime.kill_actor(disperser, restart=True)
            for request_id in cut_off:
                assert wait_client_status(client, request_id) == "FINALIZED"
            counted["FINALIZED"] += len(cut_off)

            def recounted() -> dict | None:
                try:
                    return ray.get(disperser.stats.remote(), timeout=10)["statuses"]
                except (ray.exceptions.ActorUnavailableError, ray.exceptions.ActorDiedError,
                        ray.exceptions.GetTimeoutError):
                    return None  # still restarting

            assert runtime.wait_for(lambda: recounted() == counted, 60, 1.0), recounted()

            # Two of four down (> 1/3 of the slots). A blob accepted while node 2 was up
            # ends INSUFFICIENT_SIGNATURES when node 2 dies before signing, and says which
            # slots are missing and why.
            [orphan] = disperse_together(client, [blob(30_000, 299)])
            ray.kill(nodes[2], no_restart=True)
            reason = wait_client_status(client, orphan)
            n, need = config.da.n, signing_threshold(config.da.n)
            assert re.match(rf"INSUFFICIENT_SIGNATURES: \d+ of {n} slots signed, need {need}; "
                            r"missing slots \d", reason), reason
            assert "DA node 2" in reason and "DA node 3" in reason, reason
            # No certificate is possible now, so DisperseBlob refuses new blobs
            # (UNAVAILABLE, with the reason) instead of acknowledging them; nothing is
            # recorded for them.

            def refusal() -> RpcUnavailable | None:
                try:
                    request_id = client.disperse_blob(blob(30_000, 300).tobytes())[1]
                except RpcUnavailable as exc:
                    return exc
                wait_client_status(client, request_id)  # accepted before the probe saw it
                return None

            assert runtime.wait_for(lambda: refusal() is not None, 30, 0.5)
            refused = refusal()
            assert refused is not None and refused.details["error"] == "QuorumUnavailable"
            assert refused.details["live_slots"] < refused.details["needed"]
            assert "slots" in str(refused) and refused.details["missing_slots"]
            before = ray.get(disperser.stats.remote())["statuses"]
            with pytest.raises(RpcUnavailable):
                client.disperse_blob(blob(30_000, 301).tobytes())
            assert ray.get(disperser.stats.remote())["statuses"] == before
    finally:
        ray.kill(gateway, no_restart=True)
        teardown_da(config)


def test_da_demo_streams_while_a_second_network_is_launched(deployment) -> None:
    """`zg demo`'s DA part: blobs stream through the gateway while a network is launched;
    it takes certificates, is reported per network, and is retired at the end."""
    d, config = deployment
    first = ray.get(d.manager.launch_network.remote(4))["network_id"]
    report = run_da_demo(d, config, lambda _: None, duration_s=4.0, blob_bytes=16 * 1024,
                         extra_s=90.0)
    new_net = report["launched_network"]
    assert new_net != first and report["retired_network"] == new_net
    assert report["blobs_finalized"] > 0
    assert report["launched_network_certificates"] >= 1
    assert set(report["certificates_per_network"]) <= {first, new_net}
    assert ray.get(d.manager.active_networks.remote()) == [first]
    # a blob certified on the retired network is still retrieved, byte-identical
    assert report["retired_network_blob_readable"] is True
