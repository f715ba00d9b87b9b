"""What the manifests share: names, labels, defaults, and the checks of user-given values."""

from __future__ import annotations

import re
from collections.abc import Sequence

from diag import errors

PART_OF = {"app.kubernetes.io/part-of": "meshprobe"}  # never managed-by: cleanup selects that
DEFAULT_NAMESPACE = "meshprobe"
DEFAULT_SERVICE_ACCOUNT = "meshprobe"
DEFAULT_TARGETS = ("example.com",)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def meta(name: str, namespace: str | None = None) -> dict[str, object]:
    """``metadata`` with meshprobe's part-of label."""
    out: dict[str, object] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = dict(PART_OF)
    return out


def target_hosts(targets: Sequence[str]) -> list[str]:
    from probes.targets import TargetError, parse_target

    if not targets:
        raise errors.UsageError("give at least one target (--targets HOST)")
    hosts = []
    for target in targets:
        try:
            hosts.append(parse_target(target).host)
        except TargetError as exc:
            raise errors.UsageError(str(exc)) from None
    return sorted(set(hosts))


def check_label(value: str, what: str) -> None:
    pattern = _DNS_SUBDOMAIN if what == "service account" else _DNS_LABEL
    if not pattern.match(value):
        raise errors.UsageError(f"{what} {value!r}: expected a DNS label (lower-case letters, digits, '-')")
