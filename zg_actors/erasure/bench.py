"""`zg bench codec`: encode and decode MB/s per backend, beside zfec and pyeclib in the same run.

For each code (k + m) every backend and both peers encode the same random
payload and decode it from the same k shards: the worst case, with as many
data shards lost as the code allows (min(k, m)), so decoding rebuilds as much
as it can. A figure is payload bytes (10^6 per MB) over the best run, with the
contestants taking turns so that a busy machine's slow spells hit all of them;
each is also shown as a ratio to the faster peer. Peers:

- zfec (`zfec.easyfec`): Reed-Solomon in portable C, the usual Python choice;
- pyeclib `isa_l_rs_cauchy`: ISA-L's Cauchy code behind liberasurecode's
  fragment API (headers, checksums, copies): what most Python users of ISA-L get.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from zg_actors.erasure import backends as registry
from zg_actors.erasure import code
from zg_actors.erasure.errors import UnknownBackend

KIB = 1024
MIB = 1024 * KIB
MB = 10**6  # figures are in MB/s of payload
# (k, m, payload bytes): big m costs m products per data byte, so smaller payloads
CASES = ((10, 4, 16 * MIB), (32, 64, 4 * MIB), (64, 128, 2 * MIB))
REFERENCE_SHARD_BYTES = code.SECTOR_BYTES  # pure Python: one sector per shard
CUPY_DEVICE_PAYLOAD = 256 * MIB  # device-resident run: big enough to hide kernel launches
# Contestants take turns, ROUNDS times, each turn at least MIN_RUNS runs and MIN_RUN_S (at
# most MAX_RUNS or MAX_SPEND_S); a figure is its best run over all turns. Taking turns
# shares out the slow spells of a busy machine, so ratios measured together stay fair.
ROUNDS = 3
MIN_RUNS = 2
MIN_RUN_S = 0.2
MAX_RUNS = 6
MAX_SPEND_S = 1.0
PEERS = ("zfec", "pyeclib isa_l_rs_cauchy")
AIM_NUMPY_VS_ZFEC = 0.3
AIM_DECODE_OVER_ENCODE_TIME = 1.5
AIM_CUPY_GB_S = 20.0  # one H100-class GPU, device-resident 10 + 4


@dataclass
class Contestant:
    """One backend or peer, ready to run: its round trip was checked when it was made."""

    name: str
    kind: str  # backend | peer
    payload_bytes: int
    encode: Callable[[], Any]
    decode: Callable[[], Any]
    rounds: int = ROUNDS
    min_runs: int = MIN_RUNS
    encode_s: float = float("inf")
    decode_s: float = float("inf")

    def as_dict(self, fastest_peer: dict[str, float]) -> dict[str, Any]:
        encode, decode = self.payload_bytes / self.encode_s, self.payload_bytes / self.decode_s
        return {"name": self.name, "kind": self.kind, "payload_bytes": self.payload_bytes,
                "encode_mb_s": encode / MB, "decode_mb_s": decode / MB,
                "encode_vs_peer": encode / fastest_peer["encode"] if fastest_peer else None,
                "decode_vs_peer": decode / fastest_peer["decode"] if fastest_peer else None,
                "decode_over_encode_time": self.decode_s / self.encode_s}


def best_time(action: Callable[[], Any], min_runs: int = MIN_RUNS) -> float:
    """Seconds of the fastest of a few runs of action."""
    best, spent, runs = float("inf"), 0.0, 0
    while runs < MAX_RUNS and spent < MAX_SPEND_S and (runs < min_runs or spent < MIN_RUN_S):
        start = time.perf_counter()
        action()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def take_turns(contestants: list[Contestant]) -> None:
    for turn in range(ROUNDS):
        for c in contestants:
            if turn < c.rounds:
                c.encode_s = min(c.encode_s, best_time(c.encode, c.min_runs))
                c.decode_s = min(c.decode_s, best_time(c.decode, c.min_runs))


def lost_shards(k: int, m: int) -> set[int]:
    """The worst case that still decodes: as many data shards lost as there is parity."""
    return set(range(min(k, m)))


def backend_contestant(name: str, k: int, m: int, payload: bytes) -> Contestant:
    backend = registry.get_backend(name)
    shards = code.encode(payload, k, m, backend=backend)
    kept = {i: shards[i] for i in range(k + m) if i not in lost_shards(k, m)}
    if code.decode(kept, k, m, len(payload), backend=backend) != payload:
        raise AssertionError(f"backend {name} did not round-trip {k}+{m}")
    contestant = Contestant(name, "backend", len(payload),
                            lambda: code.encode(payload, k, m, backend=backend),
                            lambda: code.decode(kept, k, m, len(payload), backend=backend))
    if name == "reference":  # seconds per run in pure Python: one is enough
        contestant.rounds, contestant.min_runs = 1, 1
    return contestant


def cupy_device_contestant(k: int, m: int, payload_bytes: int) -> Contestant:
    """The cupy backend on data already in GPU memory: the kernel's own speed."""
    import cupy

    from zg_actors.erasure.field import parity_matrix

    backend = registry.get_backend("cupy")
    length = code.shard_length(payload_bytes, k)
    data = cupy.random.randint(0, 256, size=(k, length), dtype=cupy.uint8)
    parity = cupy.empty((m, length), dtype=cupy.uint8)
    lost = sorted(lost_shards(k, m))
    chosen = [j for j in range(k) if j not in lost] + list(range(k, k + len(lost)))
    rebuilt = cupy.empty((len(lost), length), dtype=cupy.uint8)

    def encode() -> None:
        backend.matmul(parity_matrix(k, m), list(data), list(parity))
        cupy.cuda.Device().synchronize()

    def decode() -> None:
        rows = code.recovery_matrix(backend, k, m, tuple(chosen), tuple(lost))
        shards = list(data) + list(parity)
        backend.matmul(rows, [shards[i] for i in chosen], list(rebuilt))
        cupy.cuda.Device().synchronize()

    encode()  # warm-up: tables to the device, kernels compiled
    decode()
    if not cupy.array_equal(rebuilt, data[lost]):
        raise AssertionError(f"cupy on device did not round-trip {k}+{m}")
    return Contestant("cupy (device-resident)", "backend", k * length, encode, decode)


def zfec_contestant(k: int, m: int, payload: bytes) -> Contestant:
    from zfec import easyfec

    encoder, decoder = easyfec.Encoder(k, k + m), easyfec.Decoder(k, k + m)
    blocks = encoder.encode(payload)
    kept = [i for i in range(k + m) if i not in lost_shards(k, m)][:k]
    padding = len(blocks[0]) * k - len(payload)
    if decoder.decode([blocks[i] for i in kept], kept, padding) != payload:
        raise AssertionError(f"zfec did not round-trip {k}+{m}")
    return Contestant("zfec", "peer", len(payload), lambda: encoder.encode(payload),
                      lambda: decoder.decode([blocks[i] for i in kept], kept, padding))


def pyeclib_contestant(k: int, m: int, payload: bytes) -> Contestant:
    from pyeclib.ec_iface import ECDriver

    driver = ECDriver(k=k, m=m, ec_type="isa_l_rs_cauchy")
    fragments = driver.encode(payload)
    kept = [f for i, f in enumerate(fragments) if i not in lost_shards(k, m)][:k]
    if driver.decode(kept) != payload:
        raise AssertionError(f"pyeclib did not round-trip {k}+{m}")
    return Contestant("pyeclib isa_l_rs_cauchy", "peer", len(payload),
                      lambda: driver.encode(payload), lambda: driver.decode(kept))


PEER_CONTESTANTS = {"zfec": ("zfec", zfec_contestant),
                    "pyeclib isa_l_rs_cauchy": ("pyeclib", pyeclib_contestant)}


def _requested(names: list[str] | None) -> tuple[list[str], list[str]]:
    """Backends to measure, and notes on requested ones that cannot run here."""
    if not names:
        return registry.available_backends(), []
    measured, notes = [], []
    for name in names:
        if name not in registry.BACKENDS:
            raise UnknownBackend(f"unknown erasure backend {name!r}; choose one of "
                                 f"{', '.join(registry.BACKENDS)}", backend=name)
        reason = registry.unavailable_reason(name)
        if reason:
            notes.append(f"{name} skipped: {reason}")
        else:
            measured.append(name)
    return measured, notes


def _aims(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    aims = []
    for case in cases:
        rows = {row["name"]: row for row in case["rows"]}
        label = f"{case['k']}+{case['m']}"
        if "isal" in rows and "pyeclib isa_l_rs_cauchy" in rows:
            for op in ("encode", "decode"):
                value = rows["isal"][f"{op}_mb_s"] / rows["pyeclib isa_l_rs_cauchy"][f"{op}_mb_s"]
                aims.append({"aim": f"isal {op} >= pyeclib isa_l_rs_cauchy", "code": label,
                             "ratio": value, "met": value >= 1.0})
        if "numpy" in rows and "zfec" in rows:
            value = rows["numpy"]["encode_mb_s"] / rows["zfec"]["encode_mb_s"]
            aims.append({"aim": f"numpy encode >= {AIM_NUMPY_VS_ZFEC}x zfec", "code": label,
                         "ratio": value, "met": value >= AIM_NUMPY_VS_ZFEC})
        for row in case["rows"]:
            if row["kind"] == "backend":
                value = row["decode_over_encode_time"]
                aims.append({"aim": f"{row['name']} decode time <= "
                                    f"{AIM_DECODE_OVER_ENCODE_TIME}x encode time",
                             "code": label, "ratio": value,
                             "met": value <= AIM_DECODE_OVER_ENCODE_TIME})
        if "cupy (device-resident)" in rows:
            value = rows["cupy (device-resident)"]["encode_mb_s"] / 1000
            aims.append({"aim": f"cupy device-resident encode >= {AIM_CUPY_GB_S} GB/s "
                                "(H100-class GPU)", "code": label, "ratio": value,
                         "met": value >= AIM_CUPY_GB_S})
    return aims


def run_codec_bench(backends: list[str] | None = None) -> dict:
    """Encode/decode MB/s of each installed (or requested) backend beside zfec and pyeclib."""
    started = time.perf_counter()
    names, notes = _requested(backends)
    peers = [p for p in PEERS if importlib.util.find_spec(PEER_CONTESTANTS[p][0]) is not None]
    notes += [f"peer {p} skipped: pip install {PEER_CONTESTANTS[p][0]}" for p in PEERS
              if p not in peers]
    if "reference" in names:
        notes.append(f"reference (pure Python) is measured on k x {REFERENCE_SHARD_BYTES} "
                     "bytes only; the others on the payload shown")
    if "cupy" in names:
        notes.append("cupy includes host-to-GPU and back copies; cupy (device-resident) is the "
                     f"kernel alone on a {CUPY_DEVICE_PAYLOAD // MIB} MiB payload")
    cases = []
    for k, m, payload_bytes in CASES:
        payload = os.urandom(payload_bytes)
        contestants = [backend_contestant(name, k, m, payload[:k * REFERENCE_SHARD_BYTES]
                                          if name == "reference" else payload)
                       for name in names]
        if "cupy" in names:
            device_bytes = CUPY_DEVICE_PAYLOAD if (k, m) == CASES[0][:2] else payload_bytes
            contestants.append(cupy_device_contestant(k, m, device_bytes))
        contestants += [PEER_CONTESTANTS[p][1](k, m, payload) for p in peers]
        take_turns(contestants)
        peer_rows = [c for c in contestants if c.kind == "peer"]
        fastest = ({op: max(c.payload_bytes / getattr(c, f"{op}_s") for c in peer_rows)
                    for op in ("encode", "decode")} if peer_rows else {})
        cases.append({"k": k, "m": m, "payload_bytes": payload_bytes,
                      "lost_shards": sorted(lost_shards(k, m)),
                      "fastest_peer_mb_s": {op: v / MB for op, v in fastest.items()},
                      "rows": [c.as_dict(fastest) for c in contestants]})
    return {"unit": f"MB/s of payload (10^6 bytes/s), best run of {ROUNDS} turns",
            "cpus": os.cpu_count(), "backends": names, "peers": peers, "cases": cases,
            "aims": _aims(cases), "notes": notes,
            "isal_library": registry.get_backend("isal").path if "isal" in names else None,
            "seconds": time.perf_counter() - started}


SHORT_NAMES = {"pyeclib isa_l_rs_cauchy": "pyeclib ISA-L",
               "cupy (device-resident)": "cupy on device"}


def _ratio(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}x" if value >= 0.01 else "<0.01x"


def _mb_s(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _size(size: int) -> str:
    return f"{size / MIB:.0f} MiB" if size >= MIB else f"{size / KIB:.0f} KiB"


def format_codec_bench(result: dict) -> Group:
    table = Table(title=f"erasure code, {result['unit']}", box=box.SIMPLE_HEAD)
    for column in ("code", "", "encode", "vs peer", "decode", "vs peer", "dec/enc"):
        table.add_column(column, justify="left" if column in ("code", "") else "right",
                         no_wrap=True)
    for case in result["cases"]:
        for index, row in enumerate(case["rows"]):
            name = SHORT_NAMES.get(row["name"], row["name"])
            if row["payload_bytes"] != case["payload_bytes"]:
                name += f" ({_size(row['payload_bytes'])})"
            if row["kind"] == "peer":
                name = f"[dim]{name}[/]"
            label = ["", f"{case['k']}+{case['m']}", _size(case["payload_bytes"])]
            table.add_row(label[min(index + 1, 2)] if index < 2 else "", name,
                          _mb_s(row["encode_mb_s"]), _ratio(row["encode_vs_peer"]),
                          _mb_s(row["decode_mb_s"]), _ratio(row["decode_vs_peer"]),
                          f"{row['decode_over_encode_time']:.2f}",
                          end_section=index == len(case["rows"]) - 1)
    aims = Table(title="aims", box=box.SIMPLE_HEAD)
    for column in ("aim", "code", "measured", ""):
        aims.add_column(column)
    for aim in result["aims"]:
        aims.add_row(aim["aim"], aim["code"], f"{aim['ratio']:.2f}",
                     "[green]met[/]" if aim["met"] else "[red]missed[/]")
    lost = "; ".join(f"{c['k']}+{c['m']}: {len(c['lost_shards'])} data shards"
                     for c in result["cases"])
    notes = [f"decode rebuilds lost {lost}",
             f"vs peer: ratio to the faster of {' and '.join(result['peers']) or 'no peer'} "
             "on the same payload; dec/enc: decode time over encode time", *result["notes"],
             f"{result['cpus']} CPUs; took {result['seconds']:.0f} s"]
    if result.get("isal_library"):
        notes.insert(0, f"isal: {result['isal_library']}")
    return Group(table, aims, Text("\n".join(notes)))
