"""The network filters of the chosen filter chain: a TLS-terminating chain first (the request is then
seen decrypted), then the HTTP connection manager (HTTP/1.0 acceptance, the route configuration
inline or by RDS, Host as matched, ``require_tls``) handing over to ``routes.py``, or the TCP
proxy's cluster.
"""

from __future__ import annotations

from diag.live.call import LiveCall, LivePath, with_changes
from diag.live.config import EnvoyConfig
from diag.live.fields import Json, as_list, as_mapping, as_messages, as_text
from diag.live.routes import heaviest, match_vhost, route_action

HCM = "http_connection_manager"
TCP_PROXY = "tcp_proxy"


def network_filter(chain: Json, kind: str) -> Json | None:
    for flt in as_messages(chain.get("filters"), "filter_chain.filters"):
        typed = as_mapping(flt.get("typed_config"), "filters.typed_config")
        type_url = as_text(typed.get("@type"), "filters.typed_config.@type").lower()
        if kind in as_text(flt.get("name"), "filters.name") or kind.replace("_", "") in type_url:
            return typed
    return None


def run_filters(cfg: EnvoyConfig, listener: Json, chain: Json, call: LiveCall, base: LivePath) -> LivePath:
    tcp = network_filter(chain, TCP_PROXY)
    hcm = network_filter(chain, HCM)
    if chain.get("transport_socket"):  # the chain terminates TLS (inbound, gateways; never sidecar outbound)
        if call.transport != "tls":
            return with_changes(
                base,
                outcome="protocol_error",
                notes=(*base.notes, "plaintext into a TLS-terminating filter chain"),
            )
        call = LiveCall(
            call.port,
            call.address,
            "raw_buffer",
            None,
            (),
            call.host or call.sni,
            "2" if "h2" in call.alpn[:1] else "1.1",
            call.path,
        )
    if hcm is not None:
        return _through_hcm(cfg, hcm, call, base)
    if tcp is not None:
        return with_changes(base, cluster=tcp_cluster(tcp))
    return with_changes(
        base,
        outcome="unknown_filter",
        notes=(*base.notes, "chain has neither an HTTP connection manager nor a TCP proxy"),
    )


def tcp_cluster(tcp: Json) -> str | None:
    if tcp.get("cluster"):
        return as_text(tcp["cluster"], "tcp_proxy.cluster")
    weighted = as_mapping(tcp.get("weighted_clusters"), "tcp_proxy.weighted_clusters")
    return heaviest(as_messages(weighted.get("clusters"), "weighted_clusters.clusters"))


def _through_hcm(cfg: EnvoyConfig, hcm: Json, call: LiveCall, base: LivePath) -> LivePath:
    if call.http_version is None:
        return with_changes(
            base,
            outcome="protocol_error",
            notes=(*base.notes, "non-HTTP bytes reach an HTTP connection manager"),
        )
    opts = as_mapping(hcm.get("http_protocol_options"), "http_connection_manager.http_protocol_options")
    if call.http_version == "1.0" and not opts.get("accept_http_10"):
        return with_changes(base, outcome="http10_rejected", notes=(*base.notes, "HTTP/1.0 gets 426"))
    rc = as_mapping(hcm.get("route_config"), "http_connection_manager.route_config") or None
    if rc is None:
        rds = as_mapping(hcm.get("rds"), "http_connection_manager.rds")
        name = as_text(rds.get("route_config_name"), "rds.route_config_name")
        rc = cfg.routes.get(name)
        if rc is None:
            return with_changes(
                base,
                outcome="no_route_config",
                route=name or None,
                notes=(*base.notes, f"route configuration {name!r} not in the config"),
            )
    host = _host_for_matching(call, hcm, rc)
    vhosts = as_messages(rc.get("virtual_hosts"), "route_config.virtual_hosts")
    for vh in vhosts:
        for domain in as_list(vh.get("domains"), "virtual_hosts.domains"):
            as_text(domain, "virtual_hosts.domains")
    vhost = match_vhost(vhosts, host)
    with_rc = with_changes(base, route=as_text(rc.get("name"), "route_config.name") or None)
    if vhost is None:
        return with_changes(with_rc, outcome="no_vhost")
    with_vh = with_changes(with_rc, vhost=as_text(vhost.get("name"), "virtual_hosts.name"))
    if vhost.get("require_tls") == "ALL" and call.transport == "raw_buffer":
        # Envoy's router answers a plaintext request on such a vhost with a 301 to https before any
        # route is matched (pilot sets it for a Gateway server's httpsRedirect, gateway.go).
        return with_changes(with_vh, outcome="tls_redirect", direct_status=301)
    return route_action(vhost, call, with_vh)


def _host_for_matching(call: LiveCall, hcm: Json, rc: Json) -> str:
    host = (call.host or "").lower()
    if host.startswith("["):
        bare, _, port = host[1:].partition("]")
        port = port.lstrip(":")
    elif host.count(":") == 1:
        bare, _, port = host.partition(":")
    else:
        bare, port = host, ""
    strip = bool(rc.get("ignore_port_in_host_matching")) or bool(hcm.get("strip_any_host_port"))
    strip = strip or (bool(hcm.get("strip_matching_host_port")) and port == str(call.port))
    return bare if (strip or not port) else host
