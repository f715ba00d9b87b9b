"""The `meshprobe lint` command (placeholder: filled in by its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `meshprobe lint` to the app (nothing yet)."""
    del app
