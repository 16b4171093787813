"""HTTP JSON-RPC 2.0 through Ray Serve: any pillar's `jsonrpc.Registry` on one route.

A pillar plugs its methods in with a factory, an importable function that builds its
Registry inside the Serve replica (actor handles are looked up there, not pickled):

    url = serve_jsonrpc("zg-kv-rpc", "/kv", "zg_actors.storage.kv.rpc:kv_registry",
                        (config_dict,), host="127.0.0.1", port=6789, num_cpus=0.05)

Serve runs one HTTP proxy per cluster (on the head node) and one controller, both at
0 CPUs; every application is a route on that proxy. The first call to serve.start fixes
the host and port; a later pillar's app joins the same proxy under its own route.
"""

from __future__ import annotations

import importlib
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from zg_actors.rpc.jsonrpc import Registry

JSON = "application/json"


def _factory(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def gateway_observer(gateway: str) -> Any:
    """Records each request in the gateway metrics under `gateway` (the app's name), with
    its JSON-RPC error code when it failed."""
    from zg_actors.metrics import GATEWAY_METRICS, Metrics

    metrics = Metrics(GATEWAY_METRICS, gateway=gateway)

    def observe(method: str, seconds: float, code: int | None) -> None:
        metrics.inc("zg_gateway_requests", method=method)
        metrics.observe("zg_gateway_request_seconds", seconds, method=method)
        if code is not None:
            metrics.inc("zg_gateway_errors", method=method, code=code)
    return observe


@serve.deployment
class JsonRpcIngress:
    """POST a JSON-RPC request (or batch) to the route; the answer is the response body."""

    def __init__(self, factory: str, args: tuple, gateway: str) -> None:
        self.registry: Registry = _factory(factory)(*args)
        self.registry.observer = gateway_observer(gateway)

    async def __call__(self, request: Request) -> Response:
        if request.method != "POST":
            return Response("JSON-RPC 2.0: POST a request", status_code=405,
                            headers={"Allow": "POST"})
        answer = await self.registry.handle(await request.body())
        if answer is None:
            return Response(status_code=204)
        return Response(answer, media_type=JSON)


def serve_jsonrpc(name: str, route_prefix: str, factory: str, args: tuple, host: str,
                  port: int, num_cpus: float) -> str:
    """Start (or update) Serve application `name` answering JSON-RPC on `route_prefix`;
    returns its URL. Serve itself is started on host:port if it is not running yet."""
    serve.start(http_options={"host": host, "port": port})
    app = JsonRpcIngress.options(name=name, ray_actor_options={"num_cpus": num_cpus}).bind(
        factory, args, name)
    serve.run(app, name=name, route_prefix=route_prefix)
    return url_of(host, port, route_prefix)


def url_of(host: str, port: int, route_prefix: str) -> str:
    """The URL of a route on the running Serve proxy (whose host and port the first Serve
    app fixed: they may differ from those asked for), else on host:port."""
    from ray.serve.context import _get_global_client

    client = _get_global_client(raise_if_no_controller_running=False)
    if client is not None:
        host, port = client.http_config.host, client.http_config.port
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{reachable}:{port}{route_prefix}"


def stop_jsonrpc(name: str) -> bool:
    """Delete Serve application `name`; False if it was not running (Serve itself and
    other pillars' apps stay)."""
    if name not in serve.status().applications:
        return False
    serve.delete(name)
    return True
