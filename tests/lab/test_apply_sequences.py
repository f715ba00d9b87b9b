"""`Lab.apply` keeps working whatever hosts come and go: dropped hosts re-added, two entries
pinned to one address, CIDR addresses, auto-addressed and pinned entries mixed (a host that comes
back keeps its address; addresses are never assigned twice)."""

from __future__ import annotations

import random
from typing import Any

import pytest


def _entry(name: str, host: str, addresses: list[str] | None = None, port: int = 80) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "hosts": [host],
        "ports": [{"number": port, "name": f"p{port}", "protocol": "TCP" if port == 22 else "HTTP"}],
        "resolution": "NONE" if addresses else "DNS",
    }
    if addresses:
        spec["addresses"] = addresses
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


POOL = [
    _entry("auto", "auto.lab.example"),
    _entry("pinned", "pinned.lab.example", ["1.2.3.4"]),
    _entry("ssh", "ssh.lab.example", port=22),
    _entry("same-pin", "same-pin.lab.example", ["1.2.3.4"]),
    _entry("cidr", "cidr.lab.example", ["10.9.9.9/32"]),
    _entry("repinned", "auto.lab.example", ["1.2.3.9"]),
]


@pytest.mark.lab
def test_random_apply_sequences_never_fail() -> None:
    from lab.runtime import Lab

    rng = random.Random(20261126)
    with Lab([POOL[0]], internet=["extra.lab.example"]) as lab:
        for _ in range(20):
            objects = rng.sample(POOL, rng.randint(0, len(POOL)))
            lab.apply(objects)
            served = {h.name: h.addresses for h in lab._internet.hosts} if lab._internet else {}
            flat = [a for addrs in served.values() for a in addrs if not a.endswith("/32")]
            names = {o["spec"]["hosts"][0] for o in objects}
            assert names <= set(served), f"not served after apply: {names - set(served)}"
            pinned_twice = [a for a in set(flat) if flat.count(a) > 1 and a != "1.2.3.4"]
            assert pinned_twice == [], f"auto addresses given twice: {pinned_twice}"
