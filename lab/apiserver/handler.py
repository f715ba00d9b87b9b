"""The HTTP side: TLS per connection, authentication, fault injection, non-resource paths
(discovery, /version, health, OpenAPI), authorization, then the REST verb or stream.

Unknown paths outside /api and /apis get the mux's plain ``404 page not found``; an unknown group,
version or resource under them gets the NotFound Status ``the server could not find the requested
resource`` (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters, the
apiextensions NotFound handler).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from lab.apiserver import discovery, portforward, rest, streams, tables
from lab.apiserver.errors import ApiError, method_not_allowed, server_could_not_find, unauthorized
from lab.apiserver.rbac import Attributes
from lab.apiserver.requestinfo import RequestInfo, parse_request

if TYPE_CHECKING:
    from lab.apiserver.server import ApiServer, LabHTTPServer

log = logging.getLogger(__name__)
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}
ANONYMOUS = rest.Caller("system:anonymous", ("system:unauthenticated",))


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: LabHTTPServer

    def setup(self) -> None:
        raw = self.request
        raw.settimeout(10)
        self.request = self.server.ssl_context.wrap_socket(raw, server_side=True)
        self.request.settimeout(None)
        self.server.track(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    @property
    def api(self) -> ApiServer:
        return self.server.api

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = lambda self: self._handle()

    # ---- responses ---------------------------------------------------------------------------

    def _send(
        self, code: int, data: bytes, content_type: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, code: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(code, json.dumps(body).encode(), "application/json", headers)

    # streams.ChunkedWriter
    def start(self, code: int, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---- the request -------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _caller(self, info: RequestInfo) -> rest.Caller:
        header = self.headers.get("Authorization", "")
        if not header:
            if info.path in PUBLIC_PATHS:
                return ANONYMOUS
            raise unauthorized()
        scheme, _, token = header.partition(" ")
        found = self.api.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise unauthorized()
        return rest.Caller(found[0], found[1])

    def _handle(self) -> None:
        try:
            body = self._body()
            info = parse_request(self.command, self.path)
            caller = self._caller(info)
            self.api.faults.check(info)
            if info.resource_request:
                self._resource(info, caller, body)
            else:
                self._non_resource(info, caller)
        except ApiError as exc:
            self._json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:
            log.exception("apiserver: %s %s", self.command, self.path)
            self._json(500, ApiError(500, f"Internal error occurred: {exc}", "InternalError").status())

    def _non_resource(self, info: RequestInfo, caller: rest.Caller) -> None:
        self.api.authorizer.check(Attributes(caller.user, caller.groups, info.verb, False, path=info.path))
        path, registry = info.path.rstrip("/") or "/", self.api.registry
        parts = path.strip("/").split("/")
        if path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return
        body: Any = None
        if path == "/version":
            body = discovery.KUBE_VERSION
        elif path == "/api":
            body = discovery.api_versions(f"127.0.0.1:{self.api.port}")
        elif path == "/api/v1":
            body = discovery.resource_list(registry, "", "v1")
        elif path == "/apis":
            body = discovery.api_group_list(registry)
        elif parts[0] == "apis" and len(parts) == 2:
            body = discovery.api_group(registry, parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            body = discovery.resource_list(registry, parts[1], parts[2])
        elif path == "/openapi/v3":
            body = discovery.openapi_v3_root(registry)
        elif path.startswith("/openapi/v3/api/v1"):
            body = discovery.openapi_v3_doc(registry, "", "v1")
        elif (
            path.startswith("/openapi/v3/apis/")
            and len(parts) == 5
            and discovery.resource_list(registry, parts[3], parts[4]) is not None
        ):
            body = discovery.openapi_v3_doc(registry, parts[3], parts[4])
        if body is not None:
            self._json(200, body)
        elif parts[0] in ("api", "apis"):
            raise server_could_not_find()
        else:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def _resource(self, info: RequestInfo, caller: rest.Caller, body: bytes) -> None:
        api = self.api
        rtype = api.registry.lookup(info.group, info.version, info.resource)
        sub = rtype.subresource(info.subresource) if rtype is not None and info.subresource else None
        if (
            rtype is None
            or (info.subresource and sub is None)
            or (info.namespace and not rtype.namespaced and rtype.plural != "namespaces")
        ):
            raise server_could_not_find()
        verbs = sub.verbs if sub is not None else rtype.verbs
        if info.verb not in verbs and not (
            info.verb == "watch" and "list" in verbs and "watch" in rtype.verbs
        ):
            raise method_not_allowed()
        if rtype.namespaced and not info.namespace and info.verb not in ("list", "watch"):
            raise method_not_allowed()
        api.authorizer.check(
            Attributes(
                caller.user,
                caller.groups,
                info.verb,
                True,
                info.group,
                info.resource,
                info.subresource,
                info.namespace,
                info.authz_name,
            )
        )
        if info.subresource == "portforward":
            if info.verb == "get" and portforward.is_websocket(self.headers):  # the upgrade needs create too
                api.authorizer.check(
                    Attributes(caller.user, caller.groups, "create", True, "", "pods", "portforward",
                               info.namespace, info.name)
                )  # fmt: skip
            portforward.serve(self, api.store, api.port_dialer, info)
            return
        if not rtype.namespaced:
            info = dataclasses.replace(info, namespace="")
        store, content_type = api.store, self.headers.get("Content-Type", "application/json")
        if info.subresource == "log":
            streams.serve_log(store, api.log_source, info, self)
            return
        as_table = tables.wants_table(self.headers.get("Accept", ""))
        include = info.query.get("includeObject", "Metadata")
        if info.verb == "watch":
            render = (lambda obj: tables.table(rtype, [obj], "", include)) if as_table else None
            streams.serve_watch(store, info, rtype, self, api.stopping, render)
            self.close_connection = True
            return
        if info.verb == "get":
            reply = rest.get(store, info, rtype)
        elif info.verb == "list":
            reply = rest.list_(store, info, rtype)
        elif info.verb == "create":
            reply = rest.create(store, api.authorizer, info, rtype, caller, body, content_type)
        elif info.verb == "update":
            reply = rest.update(store, info, rtype, caller, body, content_type)
        elif info.verb == "patch":
            reply = rest.patch(store, info, rtype, caller, body, content_type)
        elif info.verb == "delete":
            reply = rest.delete(store, info, rtype, caller, body)
        else:
            reply = rest.delete_collection(store, info, rtype, caller, body)
        if as_table and info.verb in ("get", "list") and not info.subresource:
            items = reply.body["items"] if info.verb == "list" else [reply.body]
            rv = str(reply.body["metadata"].get("resourceVersion", ""))
            reply.body = tables.table(rtype, items, rv, include)
        self._json(reply.code, reply.body, reply.headers)
