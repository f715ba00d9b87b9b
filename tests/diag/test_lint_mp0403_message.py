"""MP0403's message for a prefix wildcard with DNS resolution and no endpoints does not contradict
itself: Istio's validation text says hosts must be "FQDN or contain only prefix wildcards", but it
checks them with ValidateFQDN, which refuses every '*' label (istio/istio
pkg/config/validation/validation.go), so a prefix wildcard is exactly what it rejects."""

from __future__ import annotations

from diag.lint.run import static_findings
from diag.model.loader import load_text
from diag.model.snapshot import Snapshot

ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: apps}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"""


def test_prefix_wildcard_message_says_what_is_refused() -> None:
    loaded = load_text(ENTRY, "wild.yaml")
    (finding,) = [f for f in static_findings(Snapshot.build(loaded.objects, loaded.mesh), loaded.objects)
                  if f.code == "MP0403"]  # fmt: skip
    text = finding.message
    assert "prefix wildcards" not in text  # the self-contradicting clause is gone
    assert "'*.example.com'" in text and "a wildcard (even a prefix one) is not" in text
    assert "resolution NONE" in text and "endpoints" in text
