"""Text output of `meshprobe lab status` (rich; honours NO_COLOR and non-TTY)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def render_status(info: Mapping[str, Any], console: Console | None = None) -> None:
    """Pods (with their sidecar state) and internet hosts of a running lab."""
    out = console or Console()
    out.print(
        f"lab [bold]{info['run_id']}[/bold]  mode={info.get('mode') or 'mesh default'}  "
        f"dns={info['dns']}  drop={info['drop_address']}"
    )
    pods = Table("namespace", "pod", "address", "sidecar", "ready", "config", "dns capture", title="pods")
    for pod in info["pods"]:
        sidecar = f"envoy pid {pod['envoy_pid']}" if pod["envoy_running"] else "[red]stopped[/red]"
        ready = "[green]yes[/green]" if pod.get("ready") else "[red]no[/red]"
        pods.add_row(
            pod["namespace"], pod["name"], pod["address"], sidecar, ready,
            f"v{pod.get('config_version', '?')}", "yes" if pod["dns_capture"] else "no",
        )  # fmt: skip
    out.print(pods)
    hosts = Table("host", "addresses", "ports", title="internet")
    for host in info["hosts"]:
        ports = ", ".join(
            f"{p}/{proto}" for p, proto in sorted(host["ports"].items(), key=lambda kv: int(kv[0]))
        )
        hosts.add_row(host["name"], ", ".join(host["addresses"]), ports)
    out.print(hosts)
