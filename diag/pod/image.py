"""The probe image, as the control plane must know it: its default name, user and entrypoint.

The ``Dockerfile`` at the repository root builds it; a test (``tests/meta/test_image.py``) keeps
these constants and the ``Dockerfile`` in step, so the pod spec the launcher writes (container
``command``, ``runAsUser``/``runAsGroup``) is the image's own. The uid/gid are not Istio's proxy
uid/gid (1337): traffic from 1337 is never captured by the sidecar (istio/istio
``tools/istio-iptables/pkg/capture/run.go``, the ``-m owner --uid-owner`` RETURN rules).
See ``docs/image.md``.
"""

from __future__ import annotations

from probes import __version__

PROBE_REPOSITORY = "ghcr.io/meshprobe/meshprobe-probe"
PROBE_IMAGE = f"{PROBE_REPOSITORY}:{__version__}"
PROBE_UID = 65532
PROBE_GID = 65532
ENTRYPOINT: tuple[str, ...] = ("python", "-m", "probes")
