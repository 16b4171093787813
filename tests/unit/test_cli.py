"""The `zg` command on bad input: a typed error naming the value, exit status 2, strict
JSON with --json, and nothing changed (no cluster is even contacted)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import ray

from zg_actors.cli import main, print_json


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(autouse=True)
def _no_ray_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about a process with no Ray connection; in a full run the
    integration session's Ray is still connected here (pytest ends session fixtures
    last), and connect() would reuse it."""
    monkeypatch.setattr(ray, "is_initialized", lambda: False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, strict_json(capsys.readouterr().out)


def test_json_output_is_strict(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"rate": float("nan"), "best_s": [float("inf"), -float("inf"), 1.5],
                "root": b"\x01"})
    assert strict_json(capsys.readouterr().out) == {"rate": None, "best_s": [None, None, 1.5],
                                                    "root": "0x01"}


@pytest.mark.parametrize("argv, error, needle", [
    (["compute", "fund", "0", "1e999999"], "InvalidInput",
     "amount '1e999999' is above the largest amount"),
    (["compute", "infer", "0", "hi", "--max-tokens", "-5"], "InvalidMaxTokens",
     "max_tokens must be at least 1, got -5"),
    (["compute", "infer", "0", "hi", "--max-tokens", "0"], "InvalidMaxTokens",
     "max_tokens must be at least 1, got 0"),
])
def test_bad_compute_arguments_fail_before_any_cluster_is_contacted(
        capsys: pytest.CaptureFixture[str], argv: list[str], error: str, needle: str) -> None:
    status, out = run(capsys, *argv, "--address", "127.0.0.1:1")
    assert status == 2 and out["error"] == error and needle in out["message"]


@pytest.mark.parametrize("argv, needle", [
    (["--duration", "0"], "--duration 0.0: seconds must be positive"),
    (["--duration", "nan"], "--duration nan"),
    (["--rate", "-1"], "--rate -1.0: transfers per second must be positive"),
    (["--settle", "-5"], "--settle -5.0: seconds must be 0 or more"),
])
def test_bad_chaos_numbers_fail_before_any_cluster_is_contacted(
        capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    status, out = run(capsys, "chaos", *argv, "--address", "127.0.0.1:1")
    assert status == 2 and out["error"] == "InvalidInput" and needle in out["message"]


def test_a_negative_status_interval_fails_before_any_cluster_is_contacted(
        capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "status", "--watch", "--interval", "-1", "--address",
                      "127.0.0.1:1")
    assert (status, out["error"], out["interval"]) == (2, "InvalidInput", -1.0)
    assert "--interval -1.0: seconds must be >= 0" in out["message"]


def test_upload_tags_that_are_not_hex_fail_before_any_cluster_is_contacted(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_bytes(b"data")
    status, out = run(capsys, "upload", str(file), "--tags", "0xzz", "--address", "127.0.0.1:1")
    assert status == 2 and out["error"] == "InvalidInput"
    assert "tags '0xzz' is not hex" in out["message"]


def test_a_config_file_that_is_not_utf8_or_holds_nan(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"ray:\n  namespace: zg-caf\xe9\n")
    status, out = run(capsys, "config", "show", "--config", str(latin1))
    assert status == 2 and out["error"] == "ConfigError" and "not UTF-8" in out["message"]
    nan = tmp_path / "nan.yaml"
    nan.write_text("da:\n  retention_s: .nan\n")
    status, out = run(capsys, "config", "show", "--config", str(nan))
    assert (status, out["key"], out["value"]) == (2, "da.retention_s", None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_cluster_at_the_address_says_how_to_start_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    for argv in (["status"], ["network", "list"], ["compute", "account"]):
        status, out = run(capsys, *argv, "--address", address)
        assert (status, out["error"]) == (2, "ClusterUnreachable")
        assert f"no Ray cluster is reachable at {address}" in out["message"]
        assert "`zg up`" in out["message"] and "`zg demo`" in out["message"]


def test_an_unreachable_ray_address_in_the_environment_is_named(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    status, out = run(capsys, "status")  # --address defaults to auto, which reads it
    assert (status, out["error"], out["address"]) == (2, "ClusterUnreachable", address)


def test_no_local_cluster_found_by_auto(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ray(**kwargs: object) -> None:  # what ray.init(address="auto") raises then
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "init", no_ray)
    status, out = run(capsys, "status")
    assert (status, out["error"]) == (2, "ClusterUnreachable")
    assert "no Ray cluster is reachable at auto" in out["message"]


@pytest.mark.parametrize("auth_mode", [None, "token"])
def test_a_head_that_answers_but_refuses_the_client_points_at_token_auth(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        auth_mode: str | None) -> None:
    """Ray 2.60 starts a head with token authentication where ~/.ray/auth_token exists; a
    client without RAY_AUTH_MODE=token is refused, and ray.init only says it could not
    connect. The head listens, so "no cluster is reachable" would mislead."""
    def refused(**kwargs: object) -> None:  # what ray.init raises then
        raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:6390")

    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        address = f"127.0.0.1:{head.getsockname()[1]}"
        if auth_mode is None:
            monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
        else:
            monkeypatch.setenv("RAY_AUTH_MODE", auth_mode)
        monkeypatch.setattr(ray, "init", refused)
        status, out = run(capsys, "status", "--address", address)
    assert (status, out["error"], out["address"]) == (2, "ClusterUnreachable", address)
    if auth_mode is None:
        assert f"the Ray head at {address} answers" in out["message"]
        assert "RAY_AUTH_MODE=token" in out["message"]
    else:  # the client did turn token auth on: nothing to point at
        assert f"no Ray cluster is reachable at {address}" in out["message"]


@pytest.mark.parametrize("pillar", ["chain", "storage", "storage.kv", "da", "compute",
                                    "chaos"])
def test_each_pillar_wires_its_commands_without_importing_the_top_level_cli(
        pillar: str) -> None:
    """A pillar's cli.py needs only zg_actors.cli_common: zg_actors.cli imports the
    pillars, never the reverse (a fresh interpreter, so no earlier import hides a cycle)."""
    import subprocess
    import sys

    probe = (f"import sys, zg_actors.{pillar}.cli as c; assert callable(c.register); "
             "print('zg_actors.cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_da_commands_without_a_gateway_say_da_is_not_up(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The gRPC gateway refuses connections: DA is named with the command that starts it,
    not a raw "failed to connect to all addresses"."""
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x" * 1000)
    gateway = f"127.0.0.1:{free_port()}"
    for argv in (["da", "disperse", str(blob)], ["da", "status", "0x" + "ab" * 32]):
        status, out = run(capsys, *argv, "--gateway", gateway)
        assert (status, out["error"], out["code"], out["pillar"]) == (2, "NotUp", "NOT_UP", "da")
        assert out["message"] == ("DA is not up in namespace zg: run `zg up` or `zg da up` "
                                  f"(no gRPC gateway answers at {gateway})")


@pytest.mark.parametrize("argv", [["up", "--only", "chain,evm"], ["up", "--without", "dA"],
                                  ["up", "--only", "chain", "--without", "da"]])
def test_up_names_an_unknown_pillar_before_any_cluster_is_contacted(
        capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    if "--only" in argv and "--without" in argv:  # argparse refuses the pair itself
        with pytest.raises(SystemExit):
            main([*argv, "--json"])
        return
    status, out = run(capsys, *argv, "--address", f"127.0.0.1:{free_port()}")
    assert (status, out["error"]) == (2, "InvalidInput")
    assert "unknown pillar" in out["message"] and argv[2] in out["message"]


def test_with_json_stdout_carries_the_document_alone(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Ray's driver prints worker and raylet log lines to stdout; with --json they go to
    stderr, so that `zg chaos --json > report.json` is one JSON document."""
    from zg_actors.cli_common import reports_only_on_stdout

    with reports_only_on_stdout(True):
        print("(raylet) WARNING: 8 PYTHON worker processes have been started")
        print_json({"ok": True})
    print("after")  # stdout is stdout again
    out, err = capsys.readouterr()
    assert strict_json(out.removesuffix("after\n")) == {"ok": True}
    assert out.endswith("after\n") and "raylet" in err
