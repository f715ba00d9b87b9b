"""Parse a MeshConfig mapping (the `mesh` key of the istio ConfigMap) into `diag.model.resources.MeshConfig`.

Defaults come from `pkg/config/mesh/mesh.go` `DefaultMeshConfig`: outbound ALLOW_ANY, root
namespace istio-system, exportTo defaults `*`, protocolDetectionTimeout 0s, auto mTLS on. Top-level
fields present in the YAML replace the default wholesale (`ApplyMeshConfig`), so
`outboundTrafficPolicy: {}` means the proto zero value, REGISTRY_ONLY.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diag.model.parse import ParseError, outbound_policy, proxy_settings
from diag.model.resources import MeshConfig, OutboundTrafficPolicy


def _export(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ("*",)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParseError(f"{field}: expected a list of strings")
    return tuple(value) or ("*",)


def _selectors(value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ParseError("discoverySelectors: expected a list of label selectors")
    return tuple(value)


def parse_mesh_config(doc: Mapping[str, Any], ref: str = "MeshConfig") -> MeshConfig:
    """A MeshConfig from the parsed `mesh` mapping; raises ParseError for wrong field types."""
    if not isinstance(doc, Mapping):
        raise ParseError("mesh config must be a mapping")
    policy = outbound_policy(doc.get("outboundTrafficPolicy"), "outboundTrafficPolicy")
    root = doc.get("rootNamespace", "istio-system")
    if not isinstance(root, str):
        raise ParseError("rootNamespace: expected a string")
    timeout = doc.get("protocolDetectionTimeout", "0s")
    auto_mtls = doc.get("enableAutoMtls", True)
    return MeshConfig(
        ref=ref,
        outbound=policy or OutboundTrafficPolicy(mode="ALLOW_ANY"),
        outbound_explicit=policy is not None,
        root_namespace=root or "istio-system",
        default_service_export_to=_export(doc.get("defaultServiceExportTo"), "defaultServiceExportTo"),
        default_virtual_service_export_to=_export(
            doc.get("defaultVirtualServiceExportTo"), "defaultVirtualServiceExportTo"
        ),
        default_destination_rule_export_to=_export(
            doc.get("defaultDestinationRuleExportTo"), "defaultDestinationRuleExportTo"
        ),
        discovery_selectors=_selectors(doc.get("discoverySelectors")),
        default_config=proxy_settings(doc.get("defaultConfig"), "defaultConfig"),
        protocol_detection_timeout=str(timeout),
        enable_auto_mtls=auto_mtls is not False,
        raw=doc,
    )
