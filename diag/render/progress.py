"""The spinner `meshprobe check` shows on stderr while the probe pod starts and runs: the phase
and the elapsed time, on a TTY only (``diag.commands.check`` never creates it otherwise)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.status import Status


class Spinner:
    """``update(phase)`` shows the phase; an empty phase stops the spinner."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.started = time.monotonic()
        self._status: Status | None = None
        self._console = Console(stderr=True)

    def update(self, phase: str) -> None:
        if not phase:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        text = f"{self.where}: {phase} ({time.monotonic() - self.started:.1f} s)"
        if self._status is None:
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)
