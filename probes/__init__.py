"""meshprobe's data plane: probers for DNS, TCP, TLS and HTTP, and the sidecar's own evidence.

Runs inside the probe pod with only the standard library, httpx and dnspython installed
(`python -m probes`). The control plane (`diag/`) reads what it prints: see `probes.model`.
"""

from __future__ import annotations

__version__ = "0.1.0"
