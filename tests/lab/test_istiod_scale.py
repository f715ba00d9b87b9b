"""The generator stays fast on mesh-sized inputs (pilot's per-port vhost cache and hashed chain
matches are mirrored); a generous bound so a loaded CI machine does not flake."""

from __future__ import annotations

import time
from typing import Any

from lab.istiod import PodView, generate
from lab.istiod.samples import kube_service, service_entry


def mesh(entries: int, services: int) -> list[dict[str, Any]]:
    objects = [
        service_entry(
            f"se{i}",
            [f"h{i}.example"],
            [(80, "HTTP"), (443, "TLS"), (5000 + i % 50, "TCP")],
            addresses=[f"10.{i // 250}.{i % 250}.1"] if i % 3 == 0 else [],
        )
        for i in range(entries)
    ]
    objects += [
        kube_service(
            f"s{i}",
            [{"port": 80, "name": "http"}, {"port": 9000 + i % 10}],
            cluster_ip=f"10.96.{i // 250}.{i % 250}",
        )
        for i in range(services)
    ]
    return objects


def test_2500_objects_generate_quickly() -> None:
    objects = mesh(2000, 500)
    started = time.monotonic()
    cfg = generate(objects, PodView("default", mode_override="REGISTRY_ONLY"))
    elapsed = time.monotonic() - started
    assert len(cfg.clusters) == 2000 * 3 + 500 * 2 + 3
    route_80 = next(lst for lst in cfg.listeners if lst["name"] == "0.0.0.0_80")
    vhosts = route_80["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    assert len(vhosts) == 2000 + 500 + 1
    assert elapsed < 5.0, f"generate took {elapsed:.2f} s"
