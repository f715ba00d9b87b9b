"""meshprobe's control plane: the CLI, cluster access, the mesh model, predictions, rules, fixes
and reports. It reads what the data plane (`probes/`) observed; see `probes.model`."""

from __future__ import annotations
