"""The generator handles mesh-sized inputs completely (every cluster, every virtual host). How fast
it does so is measured in `benchmarks/lab_startup` (`--scale`), not asserted here: a timed
assertion fails on a loaded machine without saying anything about the code."""

from __future__ import annotations

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


def test_2500_objects_generate_completely() -> None:
    objects = mesh(2000, 500)
    cfg = generate(objects, PodView("default", mode_override="REGISTRY_ONLY"))
    assert len(cfg.clusters) == 2000 * 3 + 500 * 2 + 3
    route_80 = next(lst for lst in cfg.listeners if lst["name"] == "0.0.0.0_80")
    vhosts = route_80["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    assert len(vhosts) == 2000 + 500 + 1
