"""`meshprobe demo`: the whole story in about ten seconds, on this machine (root), with nothing to
set up: a lab mesh with a Kubernetes API, a namespace that may only reach registered hosts, the
`ghcr` preset registered except for one host, `meshprobe check` finding it, the fix applied through
the API, and a green check. The lab is removed at the end, on error and on Ctrl-C.
Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from diag.presets import Preset
    from diag.report import Report
    from lab.runtime import Lab

PRESET = "ghcr"
NAMESPACE = "shop"


def register(app: typer.Typer) -> None:
    """Add `meshprobe demo` to the app."""
    app.command("demo")(demo)


def demo() -> None:
    """Show meshprobe finding and fixing a blocked egress host in a lab mesh (needs root).

    Examples:

    \b
      meshprobe demo          # as root: it builds network namespaces
    """
    from diag.errors import LabError
    from diag.presets import expand_preset

    preset = expand_preset(PRESET)
    missing = preset.bundle[-1]
    kept = list(preset.bundle[:-1])
    say = _Narrator()
    say.step(
        "a lab mesh on this machine: one namespace, '" + NAMESPACE + "', whose pods go out through an Istio "
        "sidecar in REGISTRY_ONLY mode — only hosts registered with a ServiceEntry are reachable."
    )
    say.line(f"registered: the '{PRESET}' preset except {missing['spec']['hosts'][0]} (left out on purpose)")
    try:
        from lab.runtime import Lab, LabStartError

        with Lab(_objects(kept), mode="REGISTRY_ONLY", internet=_hosts(preset), api=True, pods=[],
                 drain_seconds=0.1) as lab:  # fmt: skip
            up = lab.timings.get("up", 0)
            say.line(f"lab {lab.run_id} up in {up:.1f} s (a real Envoy sidecar, Istio's iptables rules, "
                     "a Kubernetes API)")  # fmt: skip
            _story(lab, say, preset, missing)
    except LabStartError as exc:
        raise LabError(f"the lab could not start: {exc}") from None
    say.step("lab removed; nothing is left on this machine.")


def _story(lab: Lab, say: _Narrator, preset: Preset, missing: dict[str, Any]) -> None:
    from diag.errors import InfraError

    say.step(f"meshprobe check --preset {PRESET} -n {NAMESPACE}   (a probe pod in the mesh tries every host)")
    report = _check(lab, say)
    fixes = [d.fix for t in report.targets for d in t.diagnoses if d.fix is not None and d.code == "MP0101"]
    if report.exit_code == 0 or not fixes:
        raise InfraError("the demo expected a blocked host and a fix, and got none")
    say.step(
        "the fix is the YAML above; applying it through the Kubernetes API (kubectl apply would do the same)"
    )
    import yaml

    body = yaml.safe_load(fixes[0].yaml)
    body.setdefault("metadata", {})["namespace"] = NAMESPACE
    plane = lab.control_plane
    pushes = plane.pushes
    started = time.monotonic()
    plane.store.create(body)
    while plane.pushes == pushes:  # istiod's push to the sidecars (bounded)
        if time.monotonic() - started > 10:
            raise InfraError("the sidecars did not receive the fix within 10 s")
        time.sleep(0.02)
    say.line(f"the sidecars have it after {time.monotonic() - started:.2f} s")
    say.step(f"meshprobe check --preset {PRESET} -n {NAMESPACE}   (again)")
    again = _check(lab, say)
    if again.exit_code != 0:
        raise InfraError("the fix did not turn the check green")
    say.line("every host is reachable now.")


def _check(lab: Lab, say: _Narrator) -> Report:
    from diag.checkrun import Options, run
    from diag.render.report import report_text

    options = Options([], [PRESET], [NAMESPACE], [], str(lab.kubeconfig), None, None, None, 5.0, "allowed",
                       "text", False)  # fmt: skip
    started = time.monotonic()
    report = run(options)[0]
    say.raw(report_text(report, title=f"meshprobe check · {NAMESPACE}"))
    say.line(f"(check took {time.monotonic() - started:.1f} s)")
    return report


def _objects(bundle: list[dict[str, Any]]) -> list[dict[str, Any]]:
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NAMESPACE, "labels": {"istio-injection": "enabled"}}}  # fmt: skip
    out: list[dict[str, Any]] = [namespace]
    for entry in bundle:
        body = {**entry, "metadata": {**entry["metadata"], "namespace": NAMESPACE}}
        out.append(body)
    return out


def _hosts(preset: Preset) -> list[str]:
    from urllib.parse import urlsplit

    return sorted({(urlsplit(t).hostname or "") for t in preset.targets} - {""})


class _Narrator:
    """Numbered steps on stdout, for someone who has never used Istio."""

    def __init__(self) -> None:
        self.number = 0
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        self.number += 1
        typer.echo(f"\n[{self.number}] {text}")

    def line(self, text: str) -> None:
        typer.echo(f"    {text}")

    def raw(self, text: str) -> None:
        typer.echo(text.rstrip("\n"))
