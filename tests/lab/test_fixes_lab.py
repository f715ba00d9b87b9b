"""Every fix the rules write, applied to a real sidecar (the lab) and re-probed with the real probe.

For each rule case that yields a fix (``tests/diag/test_fixes.py`` ``FIXED``, exactly the list
there): the case's objects go into the lab, the pod of the case's namespace/labels probes the
target (``python -m probes``) and three neighbours — another host on the same port, the target
host on another port, a TCP call to another host — then the fix is applied and everything is
probed again. The target must fail before and pass after; each neighbour must get through (or
not) exactly as before. The predictor that wrote the fix plays no part in the verdict: the real
Envoy, fed by ``lab.istiod``, decides.

Adaptations to the lab, each fixed here and not taken from the result: a case that names the
address its client dialled (a public IP in the testdata) dials the lab internet's own address of
the host instead (``--resolve``: a ServiceEntry's ``addresses`` are served too, and DNS answers
with them), and its fix is written for that address; a case whose live sidecar is given as a
config file runs with that sidecar's mode; a redirect case probes the redirect's target host (the
lab internet does not redirect).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes.targets import parse_target
from tests.conftest import require_lab
from tests.diag.test_fixes import FIXED
from tests.diag.test_rules import DATA, Case, run_case

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
NEIGHBOUR = "neighbour.lab.example"
REACHED = ("OK", "HTTP_STATUS")


def _target(case: Case) -> str:
    """The URL to probe: the case's target, or for a redirect case the redirect's target."""
    if case.redirects:
        return case.redirects[0].split()[2]  # "URL STATUS LOCATION SIGNATURE"
    return case.header["target"]


def _mode(case: Case) -> str | None:
    if "mode" in case.header:
        return case.header["mode"]
    config = case.header.get("sidecar-config")
    if config:
        from diag.live import path as livepath

        return livepath.effective_mode(yaml.safe_load((DATA.parent / "envoy" / config).read_text()))
    return None


def _neighbours(url: str) -> list[str]:
    """Same port another host; the same host on another (served) port; TCP to another host."""
    spec = parse_target(url)
    scheme = spec.protocol.value
    other_port = 80 if spec.port != 80 else 443
    other_scheme = "http" if other_port == 80 else "https"
    return [
        f"{scheme}://{NEIGHBOUR}:{spec.port}{'/' if scheme in ('http', 'https') else ''}",
        f"{other_scheme}://{spec.host}:{other_port}/",
        f"tcp://{NEIGHBOUR}:22",
    ]


def _hosts() -> list[str]:
    hosts = {NEIGHBOUR}
    for case, _ in FIXED:
        hosts.add(parse_target(_target(case)).host)
    return sorted(hosts)


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab import Lab

    with Lab([], internet=_hosts(), drain_seconds=0.1) as running:
        yield running


def _probe(lab: Any, case: Case, urls: list[str]) -> dict[str, dict[str, Any]]:
    pod = _pod(lab, case)
    argv = [sys.executable, "-m", "probes", "--compact", "--timeout", "3", "--concurrency", "4", *urls]
    if "address" in case.header:  # the address the case's client dials, whatever DNS answers
        argv[3:3] = ["--resolve", f"{parse_target(urls[0]).host}:{case.header['address']}"]
    proc = pod.exec(argv, env={"PYTHONPATH": str(ROOT)}, timeout=90)
    assert proc.returncode in (0, 1), proc.stderr[-800:]
    results = json.loads(proc.stdout)["results"]
    return {r["target"]["raw"]: r for r in results}


def _pod(lab: Any, case: Case) -> Any:
    labels = dict(kv.split("=", 1) for kv in case.header.get("labels", "").split(",") if "=" in kv)
    name = "fix-" + "-".join(f"{k}-{v}" for k, v in sorted(labels.items())) if labels else "fix"
    dns = case.header.get("dns-capture") == "true"
    return lab.pod(case.header.get("namespace", "default"), name + ("-dns" if dns else ""),
                   labels=labels, dns_capture=dns)  # fmt: skip


def _objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _with_fix(objects: list[dict[str, Any]], fix_objects: tuple[Any, ...]) -> list[dict[str, Any]]:
    def ref(o: dict[str, Any]) -> tuple[str, str, str]:
        meta = o.get("metadata") or {}
        return (str(o.get("kind")), str(meta.get("namespace")), str(meta.get("name")))

    fixed = {ref(dict(o)): dict(o) for o in fix_objects}
    return [o for o in objects if ref(o) not in fixed] + list(fixed.values())


def _signature(result: dict[str, Any]) -> str:
    return str(result["signature"])


@pytest.mark.parametrize(("case", "code"), FIXED, ids=[f"{c.name}-{code}" for c, code in FIXED])
def test_fix_works_on_a_real_sidecar_and_opens_nothing_else(lab: Any, case: Case, code: str) -> None:
    target = _target(case)
    host = parse_target(target).host
    if "address" in case.header:  # the client dials the lab internet's address of the host
        case = replace(case, header={**case.header, "address": lab.address_of(host)})
    objects = _objects(case.text)
    urls = [target, *_neighbours(target)]
    try:
        lab.apply(objects, mode=_mode(case))
        before = _probe(lab, case, urls)
        assert _signature(before[target]) not in REACHED, before[target]
        result, _, _ = run_case(case)
        fix = next(d.fix for d in result.diagnoses if d.code == code and d.fix is not None)
        lab.apply(_with_fix(objects, fix.objects), mode=_mode(case))
        after = _probe(lab, case, urls)
    finally:
        lab.apply([])
    assert _signature(after[target]) in REACHED, (fix.yaml, after[target])
    for url in urls[1:]:
        was, now = _signature(before[url]) in REACHED, _signature(after[url]) in REACHED
        assert was == now, (url, _signature(before[url]), _signature(after[url]), fix.yaml)
