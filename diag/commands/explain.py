"""The `meshprobe explain` command (placeholder: filled in by its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `meshprobe explain` to the app (nothing yet)."""
    del app
