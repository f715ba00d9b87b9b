"""The per-run lab CA (trustme) and one leaf certificate per internet host, chosen by SNI; the mesh
CA and its SPIFFE workload certificates (mTLS identities of sidecars and the egress gateway)."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CERT_HOST = "default.lab.example"
TRUST_DOMAIN = "cluster.local"
_HOUR = datetime.timedelta(hours=1)


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


@dataclass(frozen=True)
class WorkloadCert:
    """One workload identity's files: its SPIFFE ID, leaf + chain, key (PEM, readable by the proxy)."""

    spiffe_id: str
    cert_chain_file: Path
    private_key_file: Path


def spiffe_id(namespace: str, service_account: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """``spiffe://TD/ns/NS/sa/SA``, the identity istiod's CA signs for a pod (``pkg/spiffe``)."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


class MeshCA:
    """The mesh root (istiod's self-signed CA, ``istio-ca-root-cert``), distinct from the lab's public
    CA: a workload certificate validates against this root only, an internet origin's never does.

    Workload certificates carry only a URI SAN (the SPIFFE ID), an empty subject and both server and
    client auth, as istio-agent's CSRs get them signed (``security/pkg/pki/util``). They are written
    as files the proxy reads (the lab has no SDS).
    """

    def __init__(self, workdir: Path, trust_domain: str = TRUST_DOMAIN) -> None:
        self.trust_domain = trust_domain
        self._dir = workdir / "mesh-certs"
        self._dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _HOUR).not_valid_after(now + 240 * _HOUR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        self.root_file = self._dir / "root-cert.pem"
        _write(self.root_file, self._cert.public_bytes(serialization.Encoding.PEM))
        self._issued: dict[tuple[str, str], WorkloadCert] = {}

    def workload(self, namespace: str, service_account: str) -> WorkloadCert:
        """The certificate of ``namespace``/``service_account`` (issued on first use, then reused)."""
        key = (namespace, service_account)
        issued = self._issued.get(key)
        if issued is not None:
            return issued
        identity = spiffe_id(namespace, service_account, self.trust_domain)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([])).issuer_name(self._cert.subject).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _HOUR).not_valid_after(now + 24 * _HOUR)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        stem = f"{namespace}.{service_account}"
        chain = self._dir / f"{stem}.cert-chain.pem"
        key_file = self._dir / f"{stem}.key.pem"
        _write(chain, leaf.public_bytes(serialization.Encoding.PEM))
        _write(key_file, leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))  # fmt: skip
        issued = self._issued[key] = WorkloadCert(identity, chain, key_file)
        return issued


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not cert_sign,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _write(path: Path, data: bytes) -> None:
    """World-readable: the lab's proxies run as their own uid (files live in the run's private temp dir)."""
    path.write_bytes(data)
    path.chmod(0o644)
