"""What the lab's kubelet can "pull": container images mapped to programs on this host.

A lab pod runs its containers as host processes inside the pod's network namespace, so an image
is only a name for a program that is already here:

- the probe image (any image whose repository ends in ``meshprobe-probe``, whatever the registry
  or tag): its entrypoint ``python -m probes`` runs with this interpreter, so the probe pods of
  ``meshprobe check`` run the code under test;
- ``lab.example/app`` (any tag): a generic workload image whose ``command``/``args`` are run as
  given (``sleep``, ``sh -c ...``), for workloads that ``--like`` and ``--from`` point at;
- the CLI image (any image whose repository ends in ``meshprobe-cli``): its entrypoint
  ``meshprobe`` runs this checkout's CLI with this interpreter (``meshprobe manifests watch``'s
  Deployment runs ``meshprobe watch`` this way);
- anything else cannot be pulled (``ErrImagePull``, then ``ImagePullBackOff``), as an image
  missing from its registry behaves.

The image's default user is part of the image: the probe and CLI images run as 65532 (see the
``Dockerfile``), the app image as 1000.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROBE_REPOSITORY_SUFFIX = "meshprobe-probe"
CLI_REPOSITORY_SUFFIX = "meshprobe-cli"
APP_REPOSITORY = "lab.example/app"


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    uid: int = 1000
    gid: int = 1000


class ImagePullError(Exception):
    """The image cannot be pulled (the message is the kubelet's ``ErrImagePull`` message)."""


def repository(image: str) -> str:
    """``registry/path/name`` without tag or digest."""
    name = image.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def resolve(image: str) -> Image:
    repo = repository(image)
    if repo.rsplit("/", 1)[-1].endswith(PROBE_REPOSITORY_SUFFIX):
        return Image(entrypoint=("python", "-m", "probes"), uid=65532, gid=65532)
    if repo.rsplit("/", 1)[-1].endswith(CLI_REPOSITORY_SUFFIX):
        return Image(entrypoint=("python", "-c", "from diag.entry import run; run()"), uid=65532, gid=65532)
    if repo == APP_REPOSITORY:
        return Image(entrypoint=())
    raise ImagePullError(
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": not found'
    )


def container_argv(container: Mapping[str, Any]) -> list[str]:
    """The program a container runs: ``command`` replaces the entrypoint and ``args`` the image's
    cmd, as the kubelet composes them; ``python`` is this interpreter."""
    image = resolve(str(container.get("image") or ""))
    command: Sequence[str] = container.get("command") or image.entrypoint
    given = container.get("args")
    args: Sequence[str] = given if given is not None else image.cmd
    argv = [str(a) for a in (*command, *args)]
    if not argv:
        raise ImagePullError(
            f'image "{container.get("image")}" has no entrypoint and the container no command'
        )
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv
