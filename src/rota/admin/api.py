"""The admin listener's endpoints. Every request but the dashboard page needs the bearer
token when one is configured; errors are JSON `{"error": ...}` with the right 4xx.

    GET  /                                            the dashboard (no data in it)
    GET  /metrics                                     Prometheus text format
    GET  /api/v1/pools                                servers, states, totals, p50/p99
    GET  /api/v1/stats                                the dashboard's picture
    GET  /api/v1/config                               the running configuration
    POST /api/v1/reload                               read the config file again
    POST /api/v1/pools/{pool}/servers                 add {"host","port","name","weight"}
    POST /api/v1/pools/{pool}/servers/{server}/drain  (enable, disable)
    PUT  /api/v1/pools/{pool}/servers/{server}/weight {"weight": N}
    DELETE /api/v1/pools/{pool}/servers/{server}      drain, then remove
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import asdict
from enum import Enum
from importlib import resources
from typing import TYPE_CHECKING, Any

from rota.admin.exposition import CONTENT_TYPE
from rota.admin.http import Request, Response, error, json_response
from rota.config.reader import Reader
from rota.config.sections import servers as read_servers
from rota.config.show import to_toml
from rota.pool import Admin

if TYPE_CHECKING:
    from rota.admin.service import AdminService

ADMIN_STATES = {"drain": Admin.DRAINING, "enable": Admin.ENABLED, "disable": Admin.DISABLED}


def dashboard_page() -> bytes:
    try:
        return resources.files("rota.admin").joinpath("dashboard.html").read_bytes()
    except FileNotFoundError:
        return b"<!doctype html><title>rota</title><p>The dashboard is not installed."


class Api:
    def __init__(self, service: AdminService, token: str | None) -> None:
        self.service = service
        self.token = token
        self.page = dashboard_page()

    async def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/" and request.method in ("GET", "HEAD"):
            return Response(200, self.page, "text/html; charset=utf-8")
        if not self._authorized(request):
            return Response(
                401,
                json.dumps({"error": "missing or wrong bearer token"}).encode(),
                headers={"WWW-Authenticate": 'Bearer realm="rota"'},
            )
        parts = path.strip("/").split("/")
        if path == "/metrics":
            return await self._get(request, self._metrics)
        if parts[:2] != ["api", "v1"] or len(parts) < 3:
            return error(404, f"no such endpoint: {request.path}")
        rest = parts[2:]
        if rest == ["pools"]:
            return await self._get(request, self._pools)
        if rest == ["stats"]:
            return await self._get(request, self._stats)
        if rest == ["config"]:
            return await self._get(request, self._config)
        if rest == ["reload"]:
            if request.method != "POST":
                return _not_allowed("POST")
            problem = await self.service.reload()
            if problem is not None:
                return error(400, problem)
            return json_response(200, {"reloaded": self.service.runtime.config.source})
        if len(rest) >= 3 and rest[0] == "pools" and rest[2] == "servers":
            return await self._servers(request, rest[1], rest[3:])
        return error(404, f"no such endpoint: {request.path}")

    def _authorized(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    async def _get(self, request: Request, view: Any) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _not_allowed("GET")
        response: Response = await view()
        return response

    async def _metrics(self) -> Response:
        body = await self.service.metrics()
        return Response(200, body, CONTENT_TYPE)

    async def _pools(self) -> Response:
        total = await self.service.scrape()
        return json_response(200, self.service.views.pools(total))

    async def _stats(self) -> Response:
        return json_response(200, self.service.views.stats(time.time()))

    async def _config(self) -> Response:
        config = self.service.runtime.config
        return json_response(
            200,
            {"source": config.source, "config": _jsonable(asdict(config)), "toml": to_toml(config)},
        )

    async def _servers(self, request: Request, pool_name: str, rest: list[str]) -> Response:
        service = self.service
        pool = service.runtime.pools.get(pool_name)
        if pool is None:
            return error(404, f"no pool named {pool_name!r}")
        if not rest:
            if request.method != "POST":
                return _not_allowed("POST")
            body = _body(request)
            if isinstance(body, Response):
                return body
            return await self._add(pool_name, body)
        backend = service.find(pool_name, rest[0])
        if backend is None:
            return error(404, f"pool {pool_name!r} has no server {rest[0]!r}")
        if len(rest) == 1:
            if request.method != "DELETE":
                return _not_allowed("DELETE")
            problem = await service.remove_server(pool_name, backend.id)
            if problem is not None:
                return error(409, problem)
            return json_response(200, {"removed": backend.name, "pool": pool_name})
        if len(rest) != 2:
            return error(404, f"no such endpoint: {request.path}")
        action = rest[1]
        if action in ADMIN_STATES:
            if request.method != "POST":
                return _not_allowed("POST")
            service.set_admin(pool_name, backend.id, ADMIN_STATES[action])
            return json_response(200, {"server": backend.name, "admin": backend.admin.value})
        if action == "weight":
            if request.method != "PUT":
                return _not_allowed("PUT")
            body = _body(request)
            if isinstance(body, Response):
                return body
            weight = body.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
                return error(400, f"weight: expected an integer 1-1000, got {weight!r}")
            await service.set_weight(pool_name, backend.id, weight)
            return json_response(200, {"server": backend.name, "weight": weight})
        return error(404, f"no such endpoint: {request.path}")

    async def _add(self, pool_name: str, body: dict[str, Any]) -> Response:
        unknown = sorted(set(body) - {"host", "port", "name", "weight", "id"})
        if unknown:
            return error(400, f"unknown field {unknown[0]!r}: expected host, port, name, weight")
        from rota.config.errors import ConfigError

        try:
            (spec,) = read_servers(Reader("request body", {}), "server", [body], "server")
        except ConfigError as exc:
            field = exc.field.removeprefix("server[0].")
            return error(400, f"{field}: {exc.problem}" if field else exc.problem)
        problem = self.service.clash(pool_name, spec)
        if problem is not None:
            return error(409, problem)
        await self.service.add_server(pool_name, spec)
        return json_response(
            201,
            {"added": spec.name, "pool": pool_name, "state": "down until its health check passes"},
        )


def _body(request: Request) -> dict[str, Any] | Response:
    if not request.body:
        return error(400, "expected a JSON object in the body")
    try:
        value = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, f"the body is not valid JSON: {exc}")
    if not isinstance(value, dict):
        return error(400, "expected a JSON object in the body")
    return value


def _not_allowed(allowed: str) -> Response:
    response = error(405, f"method not allowed: use {allowed}")
    response.headers["Allow"] = allowed
    return response


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value
