"""The `meshprobe lab` command (placeholder: filled in by its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `meshprobe lab` to the app (nothing yet)."""
    del app
