"""`meshprobe watch`: continuous egress monitoring from inside the mesh (docs/watch.md).

The pipeline is check's, run on a schedule: ``targets`` (what to probe) → ``mesh`` (the live
mesh, kept current by API watches) → a probe cycle (``loop``) → ``verdict`` (one per target, from
check's report) → ``metrics`` (Prometheus), ``notify`` (a JSON log line and a Kubernetes Event
per verdict change) → ``server`` (``/metrics``, ``/healthz``, ``/readyz``).
"""
