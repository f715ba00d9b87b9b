"""Generate a synthetic mesh: N ServiceEntries, N/10 Sidecars, N/5 Kubernetes Services.

The mix is meant to look like a large real mesh: hosts spread over N/50 namespaces; ports mostly
443/TLS (DNS) and 80/HTTP, some HTTPS, TCP with addresses, CIDR (NONE), auto (unnamed) ports;
exportTo unset / "." / another namespace; Services with http/grpc/tcp ports and ClusterIPs;
Sidecars importing their own namespace, istio-system and a few others. Deterministic (seeded).

    python benchmarks/explain_scale/generate.py 10000 out.json [--yaml]
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any


def _meta(name: str, ns: str, i: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ns,
        "creationTimestamp": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:{i % 60:02d}Z",
    }


def _service_entry(i: int, ns: str, rnd: random.Random, namespaces: list[str]) -> dict[str, Any]:
    host = f"svc{i}.ext{i % 97}.example.com"
    kind = rnd.random()
    spec: dict[str, Any] = {"hosts": [host], "location": "MESH_EXTERNAL"}
    if kind < 0.45:
        spec |= {"ports": [{"number": 443, "name": "tls", "protocol": "TLS"}], "resolution": "DNS"}
    elif kind < 0.65:
        spec |= {
            "ports": [
                {"number": 80, "name": "http", "protocol": "HTTP"},
                {"number": 443, "name": "https", "protocol": "HTTPS"},
            ],
            "resolution": "DNS",
        }
    elif kind < 0.75:
        spec |= {
            "ports": [{"number": 5432 + i % 5, "name": "tcp", "protocol": "TCP"}],
            "resolution": "STATIC",
            "addresses": [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"],
            "endpoints": [{"address": f"172.16.{(i >> 8) & 255}.{i & 255}"}],
        }
    elif kind < 0.82:
        spec |= {
            "ports": [{"number": 9000 + i % 50, "name": "tcp", "protocol": "TCP"}],
            "resolution": "NONE",
            "addresses": [f"100.{64 + i % 60}.{(i >> 8) & 255}.0/24"],
        }
    elif kind < 0.9:
        spec |= {"ports": [{"number": 8080, "name": "web"}], "resolution": "DNS"}
    else:
        spec |= {
            "hosts": [f"*.wild{i}.example.org"],
            "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
            "resolution": "NONE",
        }
    export = rnd.random()
    if export < 0.3:
        spec["exportTo"] = ["."]
    elif export < 0.45:
        spec["exportTo"] = [rnd.choice(namespaces)]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": _meta(f"se-{i}", ns, i),
        "spec": spec,
    }


def _service(i: int, ns: str, rnd: random.Random) -> dict[str, Any]:
    ports = [
        {"port": 80, "name": "http"},
        {"port": 8080 + i % 3, "name": "grpc-api"},
        {"port": 5000 + i % 100, "name": "tcp-x"},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"svc-{i}", ns, i),
        "spec": {"clusterIP": f"10.96.{(i >> 8) & 255}.{i & 255}", "ports": rnd.sample(ports, k=1 + i % 3)},
    }


def _sidecar(i: int, ns: str, rnd: random.Random, namespaces: list[str]) -> dict[str, Any]:
    hosts = ["./*", "istio-system/*"] + [f"{rnd.choice(namespaces)}/*" for _ in range(3)]
    spec: dict[str, Any] = {"egress": [{"hosts": hosts}]}
    if i % 2:
        spec["workloadSelector"] = {"labels": {"app": f"app{i}"}}
    if i % 3 == 0:
        spec["outboundTrafficPolicy"] = {"mode": "REGISTRY_ONLY"}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": _meta(f"sc-{i}", ns, i),
        "spec": spec,
    }


def generate(count: int, seed: int = 7) -> dict[str, Any]:
    """A `kind: List` with the whole synthetic mesh."""
    rnd = random.Random(seed)
    namespaces = [f"team-{n}" for n in range(max(4, count // 50))]
    items = [_service_entry(i, namespaces[i % len(namespaces)], rnd, namespaces) for i in range(count)]
    items += [_service(i, namespaces[i % len(namespaces)], rnd) for i in range(count // 5)]
    items += [_sidecar(i, namespaces[i % len(namespaces)], rnd, namespaces) for i in range(count // 10)]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def main(argv: list[str]) -> int:
    count, out = int(argv[1]), argv[2]
    doc = generate(count)
    with open(out, "w", encoding="utf-8") as fh:
        if "--yaml" in argv:
            import yaml

            yaml.safe_dump_all(doc["items"], fh, default_flow_style=None, sort_keys=False)
        else:
            json.dump(doc, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
