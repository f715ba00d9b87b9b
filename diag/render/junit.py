"""JUnit XML for CI (``-o junit``): one testsuite per report (its context and namespace), one
testcase per target. A failed target's ``<failure>`` carries its primary diagnosis — the first
error- or warning-level one in root-cause order — as ``type`` (the code) and ``message`` (code,
name and message); the element's text lists every diagnosis, its evidence and the fix, so a CI
report reader shows the whole explanation. A target that failed without a diagnosis fails with
its observed signature. Config findings go to ``<system-out>``.

The document is deterministic (targets in the order given, no timestamps), so CI can diff it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from diag.report import Report, TargetResult, sorted_findings, unique
from diag.rules.base import Diagnosis


def report_junit(report: Report) -> str:
    """The report as a JUnit XML document (``<testsuites>`` with one ``<testsuite>``)."""
    suite_name = f"meshprobe {report.source.context or 'offline'}/{report.source.namespace}"
    failed = [t for t in report.targets if t.outcome != "pass"]
    total_time = sum(_seconds(t) for t in report.targets)
    counts = {"tests": str(len(report.targets)), "failures": str(len(failed)), "errors": "0"}
    seconds = f"{total_time:.3f}"
    root = ET.Element("testsuites", {"name": "meshprobe", **counts, "time": seconds})
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, **counts, "skipped": "0", "time": seconds})
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("mode", report.mesh.outbound_policy),
        ("mode_from", report.mesh.source),
        ("source", report.source.kind),
        ("dataplane", report.source.dataplane),
    ):
        ET.SubElement(properties, "property", name=name, value=value or "")
    for target in report.targets:
        _testcase(suite, target, report.source.namespace)
    findings = sorted_findings(report.findings)
    if findings:
        out = ET.SubElement(suite, "system-out")
        out.text = "\n".join(f"{f.code} {f.name} ({f.level}): {f.message}" for f in findings)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(suite: ET.Element, target: TargetResult, namespace: str) -> None:
    case = ET.SubElement(suite, "testcase", name=target.target, classname=f"meshprobe.{namespace}",
                         time=f"{_seconds(target):.3f}")  # fmt: skip
    if target.outcome == "pass":
        return
    diagnoses = unique(target.diagnoses)
    primary = next((d for d in diagnoses if d.level in ("error", "warning")), None)
    if primary is not None:
        kind, message = primary.code, f"{primary.code} {primary.name}: {primary.message}"
    else:
        signature = target.observed.signature.value if target.observed is not None else "no observation"
        verdict = target.predicted.verdict if target.predicted is not None else "unknown"
        kind, message = "failed", f"expected {target.expect}; observed {signature}, predicted {verdict}"
    failure = ET.SubElement(case, "failure", type=kind, message=message)
    failure.text = "\n\n".join(_details(d) for d in diagnoses) or message


def _details(d: Diagnosis) -> str:
    lines = [f"{d.code} {d.name} ({d.level})", d.message]
    lines += [f"  - {item}" for item in d.evidence]
    if d.resources:
        lines.append("  resources: " + ", ".join(sorted(set(d.resources))))
    if d.fix is not None:
        lines += [f"  fix: {d.fix.summary}", d.fix.yaml.rstrip("\n")]
    return "\n".join(lines)


def _seconds(target: TargetResult) -> float:
    return target.observed.elapsed if target.observed is not None else 0.0
