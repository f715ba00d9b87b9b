"""The fixes of a report, on their own and ready to apply: every distinct fix once, in the order the
report first gives it (targets in order, each target's diagnoses in root-cause order, then config
findings).

- `fixes_stream(report)`: one YAML stream, documents separated by ``---``, each fix preceded by a
  comment naming its code, target and summary — ``meshprobe explain ... --fixes-only | kubectl
  apply -f -``. Empty when there is nothing to fix.
- `write_fixes(report, directory)`: one file per fix, named from its position and its first
  object (``01-serviceentry-shop-files-lab-example-443.yaml``), so the same report always writes
  the same files; returns their paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from diag.model import kubeyaml
from diag.report import Report, sorted_findings, unique
from diag.rules.base import Fix


@dataclass(frozen=True)
class FixUse:
    """A distinct fix and who needs it: ``uses`` are ``(code, target or resource)`` pairs."""

    fix: Fix
    uses: tuple[tuple[str, str], ...]


def distinct_fixes(report: Report) -> list[FixUse]:
    """Every fix once (by its YAML), with each diagnosis that proposes it."""
    found: dict[str, tuple[Fix, list[tuple[str, str]]]] = {}
    pairs = [(d, t.target) for t in report.targets for d in unique(t.diagnoses)]
    pairs += [(f, ", ".join(sorted(set(f.resources))) or "config") for f in sorted_findings(report.findings)]
    for diagnosis, who in pairs:
        if diagnosis.fix is None or not diagnosis.fix.yaml.strip():
            continue
        entry = found.setdefault(diagnosis.fix.yaml, (diagnosis.fix, []))
        if (diagnosis.code, who) not in entry[1]:
            entry[1].append((diagnosis.code, who))
    return [FixUse(fix, tuple(uses)) for fix, uses in found.values()]


def fixes_stream(report: Report) -> str:
    """All fixes as one YAML stream for ``kubectl apply -f -``."""
    documents = []
    for use in distinct_fixes(report):
        who = "; ".join(f"{code} {target}" for code, target in use.uses)
        header = f"# {who}: {use.fix.summary}".replace("\n", " ")
        documents.append(f"{header}\n{_body(use.fix.yaml)}")
    return "---\n".join(documents)


def write_fixes(report: Report, directory: str | Path) -> list[Path]:
    """Write each fix to its own file under ``directory`` (created if missing)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    uses = distinct_fixes(report)
    digits = max(2, len(str(len(uses))))
    for index, use in enumerate(uses, start=1):
        path = folder / f"{index:0{digits}d}-{_slug(use.fix)}.yaml"
        who = "; ".join(f"{code} {target}" for code, target in use.uses)
        path.write_text(
            f"# {who}: {use.fix.summary}\n{_body(use.fix.yaml)}".replace("\r", ""), encoding="utf-8"
        )
        written.append(path)
    return written


def _body(yaml_text: str) -> str:
    text = yaml_text.lstrip("\n")
    text = text[4:] if text.startswith("---\n") else text
    return text if text.endswith("\n") else text + "\n"


def _first_object(yaml_text: str) -> Mapping[str, Any]:
    try:
        for data, _ in kubeyaml.documents(yaml_text):
            if isinstance(data, Mapping):
                return data
    except yaml.YAMLError:
        pass
    return {}


def _slug(fix: Fix) -> str:
    """``kind-namespace-name`` of the fix's first object, or of its summary."""
    first = fix.objects[0] if fix.objects else _first_object(fix.yaml)
    found = first.get("metadata")
    meta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    parts = [str(first.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", ""))]
    words = "-".join(p for p in parts if p) or fix.summary
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")
    return slug[:80].rstrip("-") or "fix"
