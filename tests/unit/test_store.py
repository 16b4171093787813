"""The LMDB store on real files: atomic writes, ordered scans, keys without values."""

from __future__ import annotations

from zg_actors.store import Store


def test_writes_scans_and_keys_survive_a_reopen(tmp_path) -> None:
    store = Store(tmp_path / "s", ["a", "b"], map_mb=16)
    store.write([("a", bytes([i]), bytes([i]) * 1000) for i in range(5)]
                + [("b", b"x", b"y")])
    store.write([("a", bytes([2]), None)])  # a delete in the same kind of batch
    store.close()
    store = Store(tmp_path / "s", ["a", "b"], map_mb=16)
    assert store.keys("a") == [bytes([i]) for i in (0, 1, 3, 4)]
    assert store.keys("a", bytes([1]), bytes([4])) == [bytes([1]), bytes([3])]
    assert [k for k, _ in store.items("a", bytes([1]), bytes([4]))] == [bytes([1]), bytes([3])]
    assert [v for _, v in store.items("a", reverse=True)][0] == bytes([4]) * 1000
    assert store.count("a") == 4 and store.get("b", b"x") == b"y"
    store.close()


def test_cached_reads_ask_the_base_once_per_key_missing_ones_too() -> None:
    from zg_actors.store.overlay import cached_reads

    base = {b"a": b"1"}
    asked: list[bytes] = []

    def get(key: bytes) -> bytes | None:
        asked.append(key)
        return base.get(key)

    reads = cached_reads(get)
    assert [reads(b"a"), reads(b"b"), reads(b"a"), reads(b"b")] == [b"1", None, b"1", None]
    assert asked == [b"a", b"b"]
