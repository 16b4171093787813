"""The flow: incremental root, node alignment, fees, tx sequence numbers, finalization,
mining contexts; driven through the real state machine with signed txs."""

from __future__ import annotations

import os

import pytest

from zg_actors.chain.modules.base import BlockInfo
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.tx import make_tx
from zg_actors.crypto.keccak import keccak256
from zg_actors.storage.constants import STATUS_FINALIZED, STATUS_UPLOADING
from zg_actors.storage.file import file_tree
from zg_actors.storage.flow import (
    MAX_TAGS_BYTES,
    append_subtree,
    flow_root,
    pad_to,
    storage_fee,
    zero_hash,
)
from zg_actors.storage.kv.encoding import STREAM_DOMAIN
from zg_actors.storage.placement import assigned_miners, client_account, miner_account
from zg_actors.store.overlay import Overlay

from .helpers import small_config


def full_tree(leaves: list[bytes]) -> bytes:
    width = 1
    while width < len(leaves):
        width *= 2
    level = leaves + [zero_hash(0)] * (width - len(leaves))
    while len(level) > 1:
        level = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def test_incremental_flow_root_equals_the_full_tree_over_sectors() -> None:
    leaves: list[bytes] = []
    frontier: dict[int, bytes] = {}
    length = 0
    for height in (0, 2, 1, 3, 0, 4, 2):
        target = -(-length // (1 << height)) * (1 << height)
        length = pad_to(frontier, length, target)
        leaves += [zero_hash(0)] * (target - len(leaves))
        sectors = [keccak256(os.urandom(8)) for _ in range(1 << height)]
        length = append_subtree(frontier, length, height, full_tree(sectors))
        leaves += sectors
        assert length == len(leaves)
        assert flow_root(frontier, length) == full_tree(leaves)


class Chain:
    """One network's state machine over a dict, committing every block it builds."""

    def __init__(self, **changes: object) -> None:
        self.config = small_config(**changes)
        self.machine = build_state_machine(self.config, 1)
        self.state: dict[bytes, bytes] = {}
        self._commit(self.machine.genesis(self.state.get))
        self.height = 0
        self.nonces: dict[bytes, int] = {}
        self.txs: list = []  # every tx run, in order

    def _commit(self, overlay: Overlay) -> None:
        for key, value in overlay.writes():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value

    def run(self, account, method: str, args: list):
        nonce = self.nonces.get(account.address, 0)
        tx = make_tx(account, 1, nonce, "flow", method, args)
        self.nonces[account.address] = nonce + 1
        self.txs.append(tx)
        receipt = self.block([tx])[0]
        return receipt

    def block(self, txs: list) -> list:
        self.height += 1
        info = BlockInfo(1, self.height, self.height * 1000, bytes(20))
        included, rejected, result = self.machine.build_block(self.state.get, info, txs, b"")
        assert not rejected, rejected
        self._commit(result.overlay)
        return result.receipts[1:]

    def query(self, method: str, *args: object):
        return self.machine.query(self.state.get, "flow", method, args)

    def balance(self, address: bytes) -> int:
        return self.machine.query(self.state.get, "token", "balance", (address,))


def submit_args(tree, value: int, tags: bytes = b"") -> list:
    return [tree.size, tags, [[root, height] for root, height in tree.nodes], value]


def test_submit_places_aligned_nodes_and_numbers_entries() -> None:
    chain = Chain()
    client = client_account(chain.config.devnet.key_seed)
    price = chain.config.storage.price_per_sector
    small_data, big_data = os.urandom(3 * 256), os.urandom(300_000)
    small = file_tree(small_data)  # nodes of 2 and 1 sectors
    big = file_tree(big_data)  # 1172 sectors padded to 1280: nodes of 1024 and 256
    r1 = chain.run(client, "submit", submit_args(small, storage_fee(list(small.nodes), price)))
    r2 = chain.run(client, "submit", submit_args(big, storage_fee(list(big.nodes), price)))
    assert r1.ok and r2.ok, (r1.error, r2.error)
    first, second = chain.query("entry", 0), chain.query("entry", 1)
    assert (first["start_position"], first["end_position"]) == (0, 3)
    assert second["start_position"] == 1024  # the 1024-sector node waits for alignment
    assert second["end_position"] == 1024 + 1280
    assert second["root"] == big.root and second["status"] == STATUS_UPLOADING
    event = r2.events[0]
    assert (event.name, event.data[1], event.data[2], event.data[3]) == ("Submit", 1, 1024,
                                                                           300_000)
    assert event.data[5] == b"" and first["tags"] == b""  # an untagged submission
    assert chain.query("file_info", big.root)["tx_seq"] == 1
    assert chain.query("file_info", keccak256(b"unknown")) is None
    # The flow root is the tree over every sector, padding included.
    sectors: list[bytes] = []
    for data, start in ((small_data, 0), (big_data, 1024)):
        sectors += [zero_hash(0)] * (start - len(sectors))
        padded = data + bytes(-len(data) % 256)
        padded += bytes(sum(256 << h for _, h in file_tree(data).nodes) - len(padded))
        sectors += [keccak256(padded[i:i + 256]) for i in range(0, len(padded), 256)]
    flow = chain.query("flow")
    assert flow["length"] == len(sectors) and flow["entries"] == 2
    assert flow["root"] == full_tree(sectors)


def test_fee_below_sectors_times_price_fails_and_changes_nothing() -> None:
    chain = Chain()
    client = client_account(chain.config.devnet.key_seed)
    tree = file_tree(os.urandom(5000))
    needed = storage_fee(list(tree.nodes), chain.config.storage.price_per_sector)
    before = chain.balance(client.address)
    receipt = chain.run(client, "submit", submit_args(tree, needed - 1))
    assert not receipt.ok and str(needed) in receipt.error
    assert chain.balance(client.address) == before
    assert chain.query("flow")["entries"] == 0


def test_nodes_that_do_not_match_the_length_are_rejected() -> None:
    chain = Chain()
    client = client_account(chain.config.devnet.key_seed)
    tree = file_tree(os.urandom(5000))
    args = submit_args(tree, 10**30)
    args[0] = 50_000
    receipt = chain.run(client, "submit", args)
    assert not receipt.ok and "node heights" in receipt.error
    bad = chain.run(client, "submit", [1, b"", [[b"short", 0]], 10**20])
    assert not bad.ok and "32-byte root" in bad.error


def test_fee_goes_to_treasury_and_pricing_segment_pools() -> None:
    chain = Chain(**{"storage.pricing_segment_sectors": 1024})
    client = client_account(chain.config.devnet.key_seed)
    tree = file_tree(os.urandom(3 * 256 * 1024))  # 3072 sectors over pricing segments 0..2
    value = storage_fee(list(tree.nodes), chain.config.storage.price_per_sector) + 7
    before = chain.balance(client.address)
    assert chain.run(client, "submit", submit_args(tree, value)).ok
    assert chain.balance(client.address) == before - value
    service = value * chain.config.storage.service_fee_bps // 10_000
    assert chain.query("treasury")["balance"] == service
    pools = [chain.query("pool", s) for s in range(3)]
    assert sum(pools) == value - service and max(pools) - min(pools) <= 1


def test_entry_is_finalized_when_every_assigned_miner_confirms() -> None:
    chain = Chain()
    seed, storage = chain.config.devnet.key_seed, chain.config.storage
    client = client_account(seed)
    tree = file_tree(os.urandom(100))
    assert chain.run(client, "submit", submit_args(tree, 10**20)).ok
    assigned = assigned_miners(0, 1, storage.miners, storage.data_shards + storage.parity_shards)
    outsider = next(i for i in range(storage.miners) if i not in assigned)
    refused = chain.run(miner_account(seed, outsider), "confirm", [0])
    assert not refused.ok and "keeps no shard" in refused.error
    assert not chain.run(client, "confirm", [0]).ok
    for i in assigned:
        assert chain.query("entry", 0)["status"] == STATUS_UPLOADING
        assert chain.run(miner_account(seed, i), "confirm", [0]).ok
    assert chain.query("file_info", tree.root)["status"] == STATUS_FINALIZED


def test_each_epoch_fixes_a_mining_context() -> None:
    chain = Chain(**{"storage.blocks_per_epoch": 3})
    client = client_account(chain.config.devnet.key_seed)
    chain.block([])  # height 1: epoch 0's context, empty flow
    assert chain.run(client, "submit", submit_args(file_tree(b"x" * 600), 10**20)).ok
    for _ in range(3):
        chain.block([])
    first, second = chain.query("context", 0), chain.query("context", 1)
    assert first["flow_length"] == 0 and second["flow_length"] == 3
    assert second["flow_root"] == chain.query("flow")["root"]
    assert first["digest"] != second["digest"]
    assert chain.query("context", 9) is None


@pytest.mark.parametrize("miners, shards", [(4, 3), (5, 5), (8, 3)])
def test_shards_of_a_segment_go_to_distinct_miners(miners: int, shards: int) -> None:
    from zg_actors.storage.placement import miner_shard, shard_miner

    for tx_seq in range(4):
        for segment in range(6):
            owners = [shard_miner(tx_seq, segment, j, miners) for j in range(shards)]
            assert len(set(owners)) == shards
            for j, owner in enumerate(owners):
                assert miner_shard(tx_seq, segment, owner, miners, shards) == j


def test_submit_event_and_entry_carry_the_tags_and_the_entry_is_found_by_its_tx() -> None:
    chain = Chain()
    client = client_account(chain.config.devnet.key_seed)
    tree = file_tree(b"kv tx body")
    tags = STREAM_DOMAIN + bytes([7]) * 32
    fee = storage_fee(list(tree.nodes), chain.config.storage.price_per_sector)
    first = chain.run(client, "submit", submit_args(tree, fee, tags))
    again = chain.run(client, "submit", submit_args(tree, fee, tags))  # same root: a new entry
    assert first.ok and again.ok, (first.error, again.error)
    event = again.events[0]
    assert event.name == "Submit" and event.data[1] == 1 and event.data[5] == tags
    assert event.data[4] == [tree.root]
    assert chain.query("entry", 1)["tags"] == tags
    assert chain.query("entry_of_tx", chain.txs[0].hash)["tx_seq"] == 0
    assert chain.query("entry_of_tx", chain.txs[1].hash)["tx_seq"] == 1
    assert chain.query("entry_of_tx", keccak256(b"no such tx")) is None


def test_tags_that_are_not_bytes_or_too_long_are_refused() -> None:
    chain = Chain()
    client = client_account(chain.config.devnet.key_seed)
    tree = file_tree(b"x")
    fee = storage_fee(list(tree.nodes), chain.config.storage.price_per_sector)
    not_bytes = chain.run(client, "submit", submit_args(tree, fee, [b"a"]))  # type: ignore[arg-type]
    assert "tags must be bytes" in not_bytes.error
    too_long = chain.run(client, "submit", submit_args(tree, fee, bytes(MAX_TAGS_BYTES + 1)))
    assert f"limit {MAX_TAGS_BYTES}" in too_long.error
    assert chain.query("flow")["entries"] == 0
