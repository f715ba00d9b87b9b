"""``python -m probes``: the probe image's entry point (see probes/cli.py and docs/probe.md)."""

from __future__ import annotations

import sys

from probes.cli import main

if __name__ == "__main__":
    sys.exit(main())
