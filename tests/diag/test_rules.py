"""Reading the table-driven rule cases in ``testdata/rules/<code>/*.yaml``.

A case is a multi-document YAML file of mesh objects. Comment lines give the case:

- header comments (``# key: value`` before the first object): ``target`` (as a user writes it),
  ``namespace``, ``labels`` (k=v,...), ``mode`` (REGISTRY_ONLY/ALLOW_ANY), ``dns-capture``
  (true/false), ``address`` (the IP dialled), ``expect-target`` (allowed/blocked/via-gateway),
  ``observed`` (a signature), ``origin``, ``status``, ``reason`` (Envoy's 503 reason),
  ``dataplane`` (sidecar/ambient/none), ``fix`` (``none`` = the diagnosis must carry no fix);
- ``# expect: MP0101`` — that code must be diagnosed; beside an object (inside its document) the
  diagnosis must also name that object; ``# expect-not: MP0101`` — that code must not appear.

Every error/warning diagnosis produced must be expected (info diagnoses may appear freely).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.sidecar import Source
from diag.report import TargetResult, assess_target
from probes.model import (
    ClusterMembership,
    DnsEvidence,
    HttpEvidence,
    Origin,
    ProbeResult,
    RedirectHop,
    SidecarEvidence,
    Signature,
    TargetSpec,
    TcpEvidence,
)
from probes.targets import parse_target

DATA = Path(__file__).parent / "testdata" / "rules"
_HEADER = re.compile(r"^#\s*([a-z-]+):\s*(.*?)\s*$")
_EXPECT = re.compile(r"#\s*expect(-not)?:\s*(MP\d{4})")
_REF = re.compile(r"^kind:\s*(\S+)", re.M)


@dataclass
class Case:
    path: Path
    text: str
    header: dict[str, str] = field(default_factory=dict)
    redirects: list[str] = field(default_factory=list)
    expect: list[tuple[str, str | None]] = field(default_factory=list)  # (code, resource ref or None)
    expect_not: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"


def all_cases() -> list[Case]:
    return [read_case(p) for p in sorted(DATA.glob("MP0[1-3]*/*.yaml"))]


def read_case(path: Path) -> Case:
    text = path.read_text()
    case = Case(path, text)
    lines = text.splitlines()
    n_header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    for line in lines[:n_header]:
        m = _HEADER.match(line)
        if m and m.group(1) == "redirect":
            case.redirects.append(m.group(2))
        elif m and m.group(1) not in ("expect", "expect-not"):
            case.header[m.group(1)] = m.group(2)
        _expects(case, line, None)
    for doc in re.split(r"^---\s*$", "\n".join(lines[n_header:]), flags=re.M):
        _expects(case, doc, _doc_ref(doc))
    return case


def _expects(case: Case, text: str, ref: str | None) -> None:
    for m in _EXPECT.finditer(text):
        if m.group(1):
            case.expect_not.append(m.group(2))
        else:
            case.expect.append((m.group(2), ref))


def _doc_ref(doc: str) -> str | None:
    kind = _REF.search(doc)
    name = re.search(r"^\s+name:\s*(\S+)", doc, re.M) or re.search(r"name:\s*([\w.-]+)", doc)
    ns = re.search(r"namespace:\s*([\w.-]+)", doc)
    if not kind or not name:
        return None
    return f"{kind.group(1)} {ns.group(1)}/{name.group(1)}" if ns else f"{kind.group(1)} {name.group(1)}"


def observed_for(case: Case, spec: TargetSpec) -> ProbeResult | None:
    sig = case.header.get("observed")
    if not sig:
        return None
    status = case.header.get("status")
    http = None
    if status or case.header.get("reason"):
        http = HttpEvidence(status=int(status) if status else None, envoy_reason=case.header.get("reason"))
    origin = Origin(case.header["origin"]) if "origin" in case.header else None
    dns = DnsEvidence(query=spec.host, a=(case.header["address"],)) if "address" in case.header else None
    hops = []
    for line in case.redirects:  # "URL STATUS LOCATION|- SIGNATURE"
        url, status_text, location, hop_sig = line.split()
        hops.append(
            RedirectHop(url, int(status_text), None if location == "-" else location, Signature(hop_sig))
        )
    silent = case.header.get("silent") == "true"
    tcp = (
        TcpEvidence(address=f"{case.header.get('address', '0.0.0.0')}:{spec.port}", silent=silent)
        if silent
        else None
    )
    return ProbeResult(spec, Signature(sig), origin, http=http, dns=dns, tcp=tcp, redirects=tuple(hops))


def sidecar_for(case: Case) -> SidecarEvidence | None:
    """``sidecar-config``: a file in testdata/envoy; ``sidecar-empty-cluster``: /clusters shows it empty."""
    name = case.header.get("sidecar-config")
    if not name:
        return None
    text = (DATA.parent / "envoy" / name).read_text()
    config = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    empty = case.header.get("sidecar-empty-cluster")
    members = (ClusterMembership(empty),) if empty else ()
    return SidecarEvidence(present=True, config=config, clusters=members)


def run_case(case: Case) -> tuple[TargetResult, Snapshot, Source]:
    loaded = load_text(case.text, case.path.name)
    assert not [p for p in loaded.problems if p.level == "error"], loaded.problems
    snapshot = Snapshot.build(loaded.objects, loaded.mesh)
    h = case.header
    labels = dict(kv.split("=", 1) for kv in h.get("labels", "").split(",") if "=" in kv)
    dns = h.get("dns-capture")
    source = Source(
        namespace=h.get("namespace", "default"),
        labels=labels,
        dns_capture=None if dns is None else dns == "true",
        mode_override=h.get("mode"),
    )
    spec = parse_target(
        h["target"],
        {
            p.number: p.protocol
            for s in snapshot.services_for_host(parse_target(h["target"]).host)
            for p in s.ports
            if p.protocol
        },
    )
    invalid_refs = {getattr(m, "ref", "") for m in snapshot.invalid}
    result = assess_target(
        spec,
        snapshot=snapshot,
        source=source,
        expect=h.get("expect-target", "allowed"),
        observed=observed_for(case, spec),
        sidecar=sidecar_for(case),
        dataplane=h.get("dataplane", "sidecar"),
        address=h.get("address"),
        invalid_objects=tuple(o for o in loaded.objects if o.ref in invalid_refs),
    )
    return result, snapshot, source


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_case(case: Case) -> None:
    result, _, _ = run_case(case)
    got = {(d.code, r) for d in result.diagnoses for r in (*d.resources, None)}
    codes = [d.code for d in result.diagnoses]
    for code, ref in case.expect:
        assert code in codes, f"{code} not diagnosed; got {[d.message for d in result.diagnoses]}"
        if ref is not None:
            named = [(d.code, d.resources) for d in result.diagnoses]
            assert (code, ref) in got, f"{code} naming {ref} not diagnosed; got {named}"
    unexpected = {d.code for d in result.diagnoses if d.level != "info"} - {c for c, _ in case.expect}
    assert not unexpected, f"unexpected {unexpected}: {[d.message for d in result.diagnoses]}"
    for code in case.expect_not:
        assert code not in codes
    if case.header.get("fix") == "none":
        assert all(d.fix is None for d in result.diagnoses if d.code in {c for c, _ in case.expect})


def test_every_case_expects_something() -> None:
    assert CASES
    for case in CASES:
        assert case.expect or case.expect_not, case.name
        assert case.path.parent.name in {c for c, _ in case.expect} | set(case.expect_not), case.name
