"""Names given on the command line, checked as Kubernetes checks them: a namespace is a DNS-1123
label, a host name a DNS-1123 subdomain. A bad name is bad usage (exit 2), refused before anything
is read, started or sent.

Source: kubernetes/kubernetes ``staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go``
(``IsDNS1123Label``: at most 63 characters, lower-case alphanumerics and ``-``, starting and ending
with an alphanumeric; ``IsDNS1123Subdomain``: such labels joined by ``.``, at most 253 characters).
"""

from __future__ import annotations

import re

from diag.errors import UsageError

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(value: str) -> bool:
    """A DNS-1123 label (what a namespace name must be)."""
    return len(value) <= 63 and bool(_LABEL.match(value))


def is_dns_subdomain(value: str) -> bool:
    """A DNS-1123 subdomain (what a host name in Istio config must be, without wildcards)."""
    return 0 < len(value) <= 253 and all(is_dns_label(label) for label in value.split("."))


def namespace(value: str, flag: str = "--namespace") -> str:
    """``value`` if it is a valid namespace name; else `UsageError` naming the flag."""
    if not is_dns_label(value):
        raise UsageError(
            f"{flag} {value!r}: not a valid namespace name (a DNS-1123 label: at most 63 lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)"
        )
    return value


def host_names(values: list[str], flag: str) -> list[str]:
    """Lower-cased ``values`` if each is a host name (DNS-1123 subdomain); else `UsageError`."""
    out = []
    for value in values:
        host = value.strip().lower()
        if not is_dns_subdomain(host):
            raise UsageError(f"{flag} {value!r}: not a host name (expected names such as api.example.com)")
        out.append(host)
    return out
