"""The `meshprobe presets` command: list the presets, or show one preset's targets and its
ServiceEntry bundle (``-o yaml``: the bundle alone, ready for ``kubectl apply -f -``).

Host names of the package-manager presets are read here, at run time, from this machine's
package managers (see `diag.presets`). ``git`` reads GitHub's published SSH ranges from
``MESHPROBE_GITHUB_META`` or GitHub's meta API. Only typer and the standard library are imported
at module level.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from diag.presets import Preset

OUTPUTS = ("text", "yaml")
HELP = """Show the presets, or one preset's targets and the ServiceEntry bundle that lets them through.

NAME=URL[,URL...] replaces a preset's hosts with the URLs' (a mirror, a private index). Hosts of
pip, npm and apt come from this machine's package managers; HTTP(S) targets count a 4xx from the
origin as reached.

Examples:

\b
  meshprobe presets                        # what exists, and where each finds its hosts
  meshprobe presets pip                    # targets, entries and notes
  meshprobe presets git -o yaml | kubectl apply -n shop -f -
  meshprobe presets npm=https://npm.corp.example/ -o yaml
"""


def _complete_names(incomplete: str) -> list[str]:
    """Shell completion: the preset names (built-in, then the user's) starting with ``incomplete``."""
    from diag.errors import InputError
    from diag.presets import BUILTINS, load_user_presets

    try:
        names = [*BUILTINS, *load_user_presets()]
    except InputError:  # a broken user presets file must not break the shell
        names = list(BUILTINS)
    return [n for n in names if n.startswith(incomplete)]


def register(app: typer.Typer) -> None:
    """Add `meshprobe presets` to the app."""
    app.command("presets", help=HELP)(presets)


def presets(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME[=URL,...]", help="A preset; none: list them all.", autocompletion=_complete_names
        ),
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="text or yaml (the bundle alone).")] = "text",
) -> None:
    from diag.errors import UsageError

    if output not in OUTPUTS:
        raise UsageError(f"-o must be text or yaml, not {output!r}")
    if name is None:
        if output == "yaml":
            raise UsageError("-o yaml needs a preset NAME")
        typer.echo(listing())
        return
    from diag.presets import expand_preset

    preset = expand_preset(name, network=True)
    if output == "yaml":
        typer.echo(preset.bundle_yaml(), nl=False)
        if not preset.bundle:
            sys.stderr.write(
                f"warning: preset {preset.name} has no entry that can be written safely (see notes)\n"
            )
        return
    typer.echo(describe(preset, name))


def listing() -> str:
    """One line per preset: name, what it is, where its hosts come from."""
    from diag.presets import BUILTINS, load_user_presets

    rows = [(b.name, b.summary, b.hosts_from) for b in BUILTINS.values()]
    rows += [
        (u.name, u.summary or "user preset", f"user presets file {u.path}")
        for u in load_user_presets().values()
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'NAME'.ljust(width)}  WHAT / HOSTS FROM"]
    lines += [f"{n.ljust(width)}  {what} — {src}" for n, what, src in rows]
    lines.append("\nmeshprobe presets NAME shows one; -o yaml prints its bundle for kubectl apply.")
    return "\n".join(lines)


def describe(preset: Preset, spec: str | None = None) -> str:
    """A preset's targets with the entry that lets each through, then its notes."""
    lines = [
        f"preset {preset.name}: {_count(preset.targets, 'target')}, {_count(preset.bundle, 'ServiceEntry')}"
    ]
    width = max((len(t) for t in preset.targets), default=0)
    for target, entry in zip(preset.targets, preset.entries, strict=True):
        accepts = "  (a 4xx from the origin counts as reached)" if target.startswith("http") else ""
        lines.append(f"  {target.ljust(width)}  → {entry or 'no entry (see notes)'}{accepts}")
    if preset.notes:
        lines.append("notes:")
        lines += [f"  - {note}" for note in preset.notes]
    lines.append(f"bundle: meshprobe presets {spec or preset.name} -o yaml | kubectl apply -n NAMESPACE -f -")
    return "\n".join(lines)


def _count(items: tuple[object, ...], noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{len(items)} {noun if len(items) == 1 else plural}"
