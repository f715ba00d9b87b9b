"""The per-run lab CA (trustme) and one leaf certificate per internet host, chosen by SNI."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_CERT_HOST = "default.lab.example"


class LabCA:
    """A fresh CA for one run; ``ca_file`` is what clients in the pods trust."""

    def __init__(self, workdir: Path) -> None:
        import trustme

        self._ca = trustme.CA(organization_name="meshprobe lab CA")
        self.ca_file = workdir / "lab-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self.ca_file.chmod(0o644)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._leaves: dict[str, Any] = {}

    def _leaf(self, host: str) -> Any:
        leaf = self._leaves.get(host)
        if leaf is None:
            leaf = self._leaves[host] = self._ca.issue_cert(host)
        return leaf

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server context presenting a certificate for ``host`` (created on first use)."""
        key = host.lower()
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.set_alpn_protocols(["http/1.1"])
            self._leaf(key).configure_cert(ctx)
            self._contexts[key] = ctx
        return ctx

    def sni_server_context(self, hosts: Iterable[str]) -> ssl.SSLContext:
        """A context for one address: switches certificate by SNI among the ``hosts`` served there;
        no SNI or another name gets the first host's certificate (a real server would do no better,
        which is how a client notices it reached the wrong origin)."""
        ordered = [h.lower() for h in hosts] or [DEFAULT_CERT_HOST]
        known = set(ordered)
        for host in known:
            self.context_for(host)
        contexts = self._contexts

        def pick(sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
            sslobj.lab_sni = name  # type: ignore[union-attr]  # read back by lab.origin
            if name and name.lower() in known:
                sslobj.context = contexts[name.lower()]

        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.set_alpn_protocols(["http/1.1"])
        self._leaf(ordered[0]).configure_cert(server)
        server.sni_callback = pick
        return server
