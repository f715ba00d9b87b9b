"""``python -m probes``: the probe image's entry point (see probes/cli.py and docs/probe.md).

The image has only the stdlib, httpx and dnspython. On a developer machine httpx/httpcore would
also import trio, rich and click when they happen to be installed (optional backends and httpx's
own CLI), costing a few hundred milliseconds and ~10 MB the probe never uses; blocking them here
makes ``python -m probes`` behave like the image everywhere. Only this entry point does it (not
``meshprobe probe``, which runs inside the control plane's process).
"""

from __future__ import annotations

import sys

for _unused in ("trio", "rich", "click"):
    if _unused not in sys.modules:
        sys.modules[_unused] = None  # type: ignore[assignment]  # makes `import trio` raise ImportError

from probes.cli import main  # noqa: E402  (after the block above, by design)

if __name__ == "__main__":
    sys.exit(main())
