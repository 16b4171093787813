"""`zg bench gpu` (or `python -m zg_actors.gpu_check`, without Ray): GPU paths checked and timed.

1. The cupy erasure backend against the reference and numpy backends: parity,
   and decodes under several loss patterns (all parity lost, exactly m lost,
   all data lost where m >= k, random), for (10, 4), (32, 64) and (64, 128);
   also lengths that are not whole 16-byte vectors, and host or device inputs.
2. 10 + 4 timed with data already in GPU memory (CUDA events, warm-ups left
   out, median of several), and host to host with the PCIe copies; the kernel's
   achieved memory bandwidth beside the GPU's peak.
3. Sector-tree roots on the GPU against the CPU's, from 1 sector to 64 MiB and
   odd leaf counts; GB/s on the GPU beside one CPU core in the same run.

It needs CuPy and a GPU, nothing of Ray; --cpu-only runs only the CPU anchors
(tests use it on machines without a GPU). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from zg_actors.crypto.keccak import KECCAK_BACKEND
from zg_actors.crypto.merkle import SECTOR_BYTES, sector_tree_root, sector_tree_roots
from zg_actors.erasure import backends, code
from zg_actors.erasure.field import parity_matrix

MIB = 1024 * 1024
GB = 10**9  # figures are in GB/s (10^9 bytes per second)
CODES = ((10, 4), (32, 64), (64, 128))
TREE_SECTOR_COUNTS = (1, 2, 3, 5, 7, 17, 255, 1023, 4097)  # odd leaf counts around powers of 2
TREE_MIB = (1, 16, 64)
TIMED_RUNS = 20
WARMUPS = 3
HOST_RUNS = 5
PEAK_HBM_GB_S = 4800  # H200's HBM3e, NVIDIA's figure
AIM_ENCODE_GB_S = 20.0  # 10 + 4, device-resident


def progress(message: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loss_patterns(k: int, m: int, rng: np.random.Generator) -> dict[str, list[int]]:
    """Named sets of lost shard indexes, each leaving at least k shards."""
    patterns = {"all parity": list(range(k, k + m)),
                "exactly m, mixed": sorted(rng.choice(k + m, size=m, replace=False).tolist()),
                "first min(k, m) data": list(range(min(k, m))),
                "random fewer than m": sorted(rng.choice(k + m, size=max(1, m // 2),
                                                         replace=False).tolist())}
    if m >= k:
        patterns["all data"] = list(range(k))
    return patterns


def check_codec(k: int, m: int, cupy_backend: Any, rng: np.random.Generator) -> dict[str, Any]:
    """cupy against numpy (large payload) and reference (one sector per shard)."""
    results: dict[str, Any] = {"code": f"{k}+{m}", "checks": 0, "failures": []}

    def same(label: str, a: Any, b: Any) -> None:
        results["checks"] += 1
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            results["failures"].append(label)

    payloads = {"reference": rng.bytes(k * SECTOR_BYTES - 5),
                "numpy": rng.bytes(k * 64 * 1024 + 777)}
    for anchor, payload in payloads.items():
        expected = code.encode(payload, k, m, backend=anchor)
        shards = code.encode(payload, k, m, backend=cupy_backend)
        same(f"parity vs {anchor}", shards, expected)
        for name, lost in loss_patterns(k, m, rng).items():
            kept = {i: shards[i] for i in range(k + m) if i not in lost}
            decoded = code.decode(kept, k, m, len(payload), backend=cupy_backend)
            results["checks"] += 1
            if decoded != payload or decoded != code.decode(kept, k, m, len(payload),
                                                            backend=anchor):
                results["failures"].append(f"decode, {name} lost, vs {anchor}")
    # Lengths that are not whole 16-byte vectors, and rows that are not 16-byte aligned.
    cp = cupy_backend.cupy
    for length in (1, 15, 17, 1001, 4096 + 8):
        sources = [rng.integers(0, 256, size=length, dtype=np.uint8) for _ in range(k)]
        matrix = parity_matrix(k, m)
        host_out = [np.empty(length, dtype=np.uint8) for _ in range(m)]
        numpy_out = [np.empty(length, dtype=np.uint8) for _ in range(m)]
        cupy_backend.matmul(matrix, sources, host_out)
        backends.get_backend("numpy").matmul(matrix, sources, numpy_out)
        same(f"matmul of {length}-byte rows", np.stack(host_out), np.stack(numpy_out))
    base = cp.asarray(rng.integers(0, 256, size=k * 4096 + 3, dtype=np.uint8))
    unaligned = [base[3 + j * 4096:3 + (j + 1) * 4096] for j in range(k)]
    device_out = cp.empty((m, 4096), dtype=cp.uint8)
    cupy_backend.matmul(parity_matrix(k, m), unaligned, list(device_out))
    expected_out = [np.empty(4096, dtype=np.uint8) for _ in range(m)]
    backends.get_backend("numpy").matmul(parity_matrix(k, m), [a.get() for a in unaligned],
                                         expected_out)
    same("matmul of unaligned device rows", device_out.get(), np.stack(expected_out))
    return results


def cuda_median_s(cp: Any, action: Callable[[], None], runs: int = TIMED_RUNS) -> float:
    """Median seconds of `action` on the GPU by CUDA events, after WARMUPS unmeasured runs."""
    for _ in range(WARMUPS):
        action()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(runs):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        action()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1000)
    return statistics.median(times)


def wall_median_s(action: Callable[[], Any], runs: int = HOST_RUNS) -> float:
    action()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_codec(cupy_backend: Any, payload_mib: int, rng: np.random.Generator) -> dict[str, Any]:
    """10 + 4 encode and decode GB/s of payload, device-resident and host to host."""
    cp = cupy_backend.cupy
    k, m = 10, 4
    length = code.shard_length(payload_mib * MIB, k)
    payload_bytes = k * length
    data = cp.asarray(rng.integers(0, 256, size=(k, length), dtype=np.uint8))
    shards = cp.empty((k + m, length), dtype=cp.uint8)
    shards[:k] = data
    matrix = parity_matrix(k, m)
    lost = list(range(m))  # the worst case: m data shards rebuilt
    chosen = [j for j in range(k) if j not in lost] + list(range(k, k + m))
    rebuilt = cp.empty((m, length), dtype=cp.uint8)

    def encode() -> None:
        cupy_backend.matmul_device(matrix, list(shards[:k]), list(shards[k:]))

    def decode() -> None:
        rows = code.recovery_matrix(cupy_backend, k, m, tuple(chosen), tuple(lost))
        cupy_backend.matmul_device(rows, [shards[i] for i in chosen], list(rebuilt))

    progress(f"10+4 device-resident, {payload_bytes / MIB:.0f} MiB payload")
    encode_s = cuda_median_s(cp, encode)
    decode_s = cuda_median_s(cp, decode)
    identical = bool(cp.array_equal(rebuilt, data[:m]))
    host_parity = code.encode_parity(data[:, :1 << 20].get(), m, backend="numpy")
    identical = identical and bool(np.array_equal(shards[k:, :1 << 20].get(), host_parity))
    progress("10+4 host to host (PCIe copies included)")
    host_payload = rng.bytes(payload_bytes)
    host_shards = code.encode(host_payload, k, m, backend=cupy_backend)
    kept = {i: host_shards[i] for i in chosen}
    host_encode_s = wall_median_s(lambda: code.encode(host_payload, k, m, backend=cupy_backend))
    host_decode_s = wall_median_s(lambda: code.decode(kept, k, m, payload_bytes,
                                                      backend=cupy_backend))
    host_rows = data.get()
    copy_in_s = wall_median_s(lambda: cp.asarray(host_rows))  # pageable: synchronous
    copy_out_s = wall_median_s(lambda: data.get())
    numpy_encode_s = wall_median_s(lambda: code.encode(host_payload[:16 * MIB], k, m,
                                                       backend=backends.fastest(gpu=False)),
                                   runs=3)
    moved = (k + m) * length  # k rows read, m written
    return {"k": k, "m": m, "payload_bytes": payload_bytes,
            "device_encode_gb_s": payload_bytes / encode_s / GB,
            "device_decode_gb_s": payload_bytes / decode_s / GB,
            "device_encode_ms": encode_s * 1000, "device_decode_ms": decode_s * 1000,
            "encode_hbm_gb_s": moved / encode_s / GB, "peak_hbm_gb_s": PEAK_HBM_GB_S,
            "host_encode_gb_s": payload_bytes / host_encode_s / GB,
            "host_decode_gb_s": payload_bytes / host_decode_s / GB,
            "copy_to_gpu_gb_s": payload_bytes / copy_in_s / GB,
            "copy_from_gpu_gb_s": payload_bytes / copy_out_s / GB,
            "cpu_backend": backends.fastest(gpu=False).name,
            "cpu_encode_gb_s": 16 * MIB / numpy_encode_s / GB,
            "aim_encode_gb_s": AIM_ENCODE_GB_S, "identical": identical,
            "runs": TIMED_RUNS, "warmups": WARMUPS}


def check_trees(rng: np.random.Generator, gpu: bool) -> dict[str, Any]:
    """GPU roots against the CPU's for many sizes, sector sizes and multi-row batches."""
    results: dict[str, Any] = {"checks": 0, "failures": []}
    sizes = [n * SECTOR_BYTES for n in TREE_SECTOR_COUNTS] + [
        mib * MIB + (SECTOR_BYTES if mib == 16 else 0) for mib in TREE_MIB]
    for size in sizes:
        data = rng.bytes(size)
        cpu = sector_tree_root(data, SECTOR_BYTES, backend="cpu")
        if gpu:
            results["checks"] += 1
            if sector_tree_root(data, SECTOR_BYTES, backend="cupy") != cpu:
                results["failures"].append(f"{size} bytes")
    if gpu:
        for sector_bytes, sectors in ((8, 9), (64, 5), (136, 3), (1088, 2), (256 + 8, 7)):
            data = rng.bytes(sector_bytes * sectors)
            results["checks"] += 1
            if (sector_tree_root(data, sector_bytes, backend="cupy")
                    != sector_tree_root(data, sector_bytes, backend="cpu")):
                results["failures"].append(f"{sectors} sectors of {sector_bytes} bytes")
        rows = rng.integers(0, 256, size=(14, 37 * SECTOR_BYTES), dtype=np.uint8)
        results["checks"] += 1
        if sector_tree_roots(rows, SECTOR_BYTES, "cupy") != sector_tree_roots(
                rows, SECTOR_BYTES, "cpu"):
            results["failures"].append("14 rows of 37 sectors")
        payload = rng.bytes(3 * MIB + 1234)
        gpu_result = code.encode_with_roots(payload, 10, 4, backend="cupy")
        cpu_result = code.encode_with_roots(payload, 10, 4, backend="numpy")
        results["checks"] += 1
        if not (np.array_equal(gpu_result[0], cpu_result[0])
                and gpu_result[1:] == cpu_result[1:]):
            results["failures"].append("encode_with_roots cupy vs numpy")
    return results


def time_trees(tree_mib: int, rng: np.random.Generator, gpu: bool) -> dict[str, Any]:
    """GB/s of sector-tree roots: GPU (device-resident and host to host) and one CPU core."""
    size = tree_mib * MIB
    host = rng.integers(0, 256, size=size, dtype=np.uint8)
    host_bytes = host.tobytes()
    progress(f"sector tree, {tree_mib} MiB on one CPU core")
    cpu_s = wall_median_s(lambda: sector_tree_root(host_bytes, SECTOR_BYTES, "cpu"), runs=3)
    result: dict[str, Any] = {"bytes": size, "cpu_gb_s": size / cpu_s / GB,
                              "cpu_keccak": KECCAK_BACKEND}
    if gpu:
        from zg_actors.crypto import sector_tree

        tree = sector_tree.get_backend("cupy")
        cp = tree.cupy
        device = cp.asarray(host).reshape(1, -1)
        progress(f"sector tree, {tree_mib} MiB on the GPU")
        device_s = cuda_median_s(cp, lambda: tree.device_roots(device, SECTOR_BYTES))
        host_s = wall_median_s(lambda: tree.roots(host, SECTOR_BYTES))
        result.update({"gpu_device_gb_s": size / device_s / GB,
                       "gpu_host_gb_s": size / host_s / GB,
                       "gpu_over_cpu": cpu_s / device_s,
                       "gpu_host_over_cpu": cpu_s / host_s})
    return result


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"host": platform.node(), "cpus": os.cpu_count(),
                            "python": platform.python_version()}
    try:
        info["gpu"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=30,
            check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    return info


def run_gpu_check(payload_mib: int = 256, tree_mib: int = 64,
                  cpu_only: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(2026)
    report: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                              "machine": machine()}
    if cpu_only:
        report["trees"] = time_trees(tree_mib, rng, gpu=False)
        return report
    cupy_backend = backends.get_backend("cupy")  # UnknownBackend says why if no GPU
    import cupy

    report["cupy"] = cupy.__version__
    report["codec_checks"] = []
    for k, m in CODES:
        progress(f"cupy codec vs reference and numpy, {k}+{m}")
        report["codec_checks"].append(check_codec(k, m, cupy_backend, rng))
    report["codec_timing"] = time_codec(cupy_backend, payload_mib, rng)
    progress("sector-tree roots, GPU vs CPU")
    report["tree_checks"] = check_trees(rng, gpu=True)
    report["trees"] = time_trees(tree_mib, rng, gpu=True)
    failures = [f for c in report["codec_checks"] for f in c["failures"]]
    failures += report["tree_checks"]["failures"]
    if not report["codec_timing"]["identical"]:
        failures.append("device-resident timing run did not round-trip")
    report["failures"] = failures
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"GPU check, {report['date']}, {report['machine']}"]
    for check in report.get("codec_checks", []):
        lines.append(f"cupy codec {check['code']}: {check['checks']} comparisons with reference "
                     f"and numpy, {len(check['failures'])} differ {check['failures'] or ''}")
    timing = report.get("codec_timing")
    if timing:
        lines += [
            f"10+4 device-resident, {timing['payload_bytes'] / MIB:.0f} MiB payload, median of "
            f"{timing['runs']} (CUDA events, {timing['warmups']} warm-ups left out):",
            f"  encode {timing['device_encode_gb_s']:.1f} GB/s ({timing['device_encode_ms']:.2f}"
            f" ms; aim {timing['aim_encode_gb_s']:.0f} GB/s: "
            f"{timing['device_encode_gb_s'] / timing['aim_encode_gb_s']:.1f}x); memory traffic "
            f"{timing['encode_hbm_gb_s']:.0f} GB/s of {timing['peak_hbm_gb_s']} GB/s peak "
            f"({timing['encode_hbm_gb_s'] / timing['peak_hbm_gb_s']:.0%})",
            f"  decode (4 data shards rebuilt) {timing['device_decode_gb_s']:.1f} GB/s "
            f"({timing['device_decode_ms']:.2f} ms)",
            f"10+4 host to host (PCIe copies included): encode {timing['host_encode_gb_s']:.2f}"
            f" GB/s, decode {timing['host_decode_gb_s']:.2f} GB/s (one plain copy of the "
            f"payload: to the GPU {timing['copy_to_gpu_gb_s']:.2f} GB/s, back "
            f"{timing['copy_from_gpu_gb_s']:.2f} GB/s); CPU backend "
            f"{timing['cpu_backend']} in the same run: encode {timing['cpu_encode_gb_s']:.2f} GB/s"
            f" (device-resident GPU {timing['device_encode_gb_s'] / timing['cpu_encode_gb_s']:.0f}"
            "x)"]
    checks = report.get("tree_checks")
    if checks:
        lines.append(f"sector-tree roots GPU vs CPU: {checks['checks']} comparisons, "
                     f"{len(checks['failures'])} differ {checks['failures'] or ''}")
    trees = report["trees"]
    line = (f"sector-tree roots of {trees['bytes'] / MIB:.0f} MiB: cpu one core "
            f"({trees['cpu_keccak']}) {trees['cpu_gb_s']:.3f} GB/s")
    if "gpu_device_gb_s" in trees:
        line += (f"; GPU device-resident {trees['gpu_device_gb_s']:.1f} GB/s "
                 f"({trees['gpu_over_cpu']:.0f}x one core), host to host "
                 f"{trees['gpu_host_gb_s']:.2f} GB/s ({trees['gpu_host_over_cpu']:.1f}x)")
    lines.append(line)
    if "failures" in report:
        lines.append("ALL IDENTICAL" if not report["failures"] else
                     f"FAILURES: {report['failures']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zg bench gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--payload-mib", type=int, default=256,
                        help="10+4 timing payload in MiB (default 256)")
    parser.add_argument("--tree-mib", type=int, default=64,
                        help="sector-tree timing size in MiB (default 64)")
    parser.add_argument("--cpu-only", action="store_true",
                        help="only the CPU anchors (for machines without a GPU)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    report = run_gpu_check(args.payload_mib, args.tree_mib, args.cpu_only)
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2, allow_nan=False)
    return 1 if report.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
