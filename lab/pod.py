"""A lab pod: its netns (veth to the internet, default route), istio-iptables capture, Envoy as
1337, the pilot-agent endpoints and (with DNS capture) the agent's DNS proxy.

``Pod.exec`` runs a command "in the app container": inside the pod netns, in a private mount
namespace where the pod's resolv.conf is bind-mounted over ``/etc/resolv.conf`` (``unshare -m``,
so nothing under ``/etc`` changes on the host), as a non-proxy uid/gid with the lab CA trusted.
The command keeps ``CAP_DAC_READ_SEARCH`` (ambient) only so it can run interpreters installed under
``/root``; it changes nothing about capture, which matches on uid/gid.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import admin, iptables
from lab import ipv6 as ipv6_net
from lab.bootstrap import StatsAnnotations, StatsMatcher, build_bootstrap
from lab.envoy import PROXY_GID, PROXY_UID, EnvoyProcess
from lab.names import RunNames
from lab.netns import NetnsThread, delete_netns, ip_batch, nsenter_argv, run
from lab.xds import COUNTERS_PATH, FileXds, PushResult, parse_counters

APP_UID = 1000
APP_GID = 1000


@dataclass(frozen=True)
class PodSpec:
    """What a lab pod looks like to istiod and to the injector.

    ``proxy_config`` is ProxyConfig as a dict; the ``proxy.istio.io/config`` annotation (YAML) is
    merged over it like the injector does. DNS capture is on with ``dns_capture`` or
    ``proxyMetadata.ISTIO_META_DNS_CAPTURE: "true"``. Stats: ``proxyStatsMatcher`` plus the
    ``sidecar.istio.io/statsInclusion{Prefixes,Suffixes,Regexps}`` annotations (which win).
    ``sidecar.istio.io/interceptionMode: NONE`` installs no capture rules at all.
    ``proxy_uid``/``proxy_gid``: the sidecar's identity (1337 unless, e.g., OpenShift allocates
    one: ``GetProxyIDs``); Envoy, the DNS proxy and the capture rules (``-u``/``-g``) follow it.
    ``sidecar=False`` is a pod without injection: its netns and route only (no capture, no Envoy).
    ``proxy_starts=False`` is an injected pod whose proxy never comes up (capture rules and agent in
    place, no Envoy): captured connections are refused and ``/healthz/ready`` never says 200.
    ``service_account`` is the pod's ``serviceAccountName``: its sidecar presents the mesh CA's
    certificate for ``spiffe://cluster.local/ns/NAMESPACE/sa/SERVICE_ACCOUNT`` on ISTIO_MUTUAL.
    ``ipv6=True`` makes the pod dual-stack (``lab.ipv6``): an IPv6 address and route beside the
    IPv4 ones, ip6tables capture, and pilot's ``::`` wildcard in its generated config.
    """

    namespace: str = "default"
    name: str = "probe"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    dns_capture: bool = False
    proxy_config: Mapping[str, Any] = field(default_factory=dict)
    proxy_uid: int = PROXY_UID
    proxy_gid: int = PROXY_GID
    sidecar: bool = True
    proxy_starts: bool = True
    service_account: str = "default"
    ipv6: bool = False

    @property
    def effective_proxy_config(self) -> dict[str, Any]:
        merged = dict(self.proxy_config)
        raw = self.annotations.get("proxy.istio.io/config")
        if raw:
            import yaml

            try:
                loaded = yaml.safe_load(raw)
            except yaml.YAMLError:
                loaded = None
            if isinstance(loaded, Mapping):
                merged.update(loaded)
        return merged

    @property
    def captures_dns(self) -> bool:
        meta = self.effective_proxy_config.get("proxyMetadata") or {}
        return self.dns_capture or str(meta.get("ISTIO_META_DNS_CAPTURE", "")).lower() == "true"

    @property
    def intercepts(self) -> bool:
        return self.annotations.get("sidecar.istio.io/interceptionMode", "REDIRECT").upper() != "NONE"

    @property
    def stats_matcher(self) -> StatsMatcher | None:
        return StatsMatcher.from_proxy_config(self.effective_proxy_config)

    @property
    def stats_annotations(self) -> StatsAnnotations:
        prefix = "sidecar.istio.io/statsInclusion"
        return StatsAnnotations(
            prefixes=self.annotations.get(prefix + "Prefixes", ""),
            suffixes=self.annotations.get(prefix + "Suffixes", ""),
            regexps=self.annotations.get(prefix + "Regexps", ""),
        )


@dataclass(frozen=True)
class PodNetwork:
    netns: str
    veth_pod: str
    veth_internet: str
    pod_address: str
    gateway: str
    dns_server: str
    address6: str = ""  # the pod's IPv6 address (dual-stack pods only)
    gateway6: str = ""


def create_pod_network(
    names: RunNames, index: int, stack: contextlib.ExitStack, netns: str | None = None, ipv6: bool = False
) -> PodNetwork:
    """Pod ``index``'s netns (``netns`` or ``mplab-<run>-p<index>``) and its veth to the internet
    netns (cleanup registered on ``stack``)."""
    ns = netns or names.pod_netns(index)
    gateway, address = names.link_addresses(index)
    vi, vp = names.veth_internet_side(index), names.veth_pod_side(index)
    run(["ip", "netns", "add", ns])
    stack.callback(delete_netns, ns)
    run(
        [
            "ip",
            "link",
            "add",
            vi,
            "netns",
            names.internet_netns,
            "type",
            "veth",
            "peer",
            "name",
            vp,
            "netns",
            ns,
        ]
    )
    ip_batch([f"addr add {gateway}/30 dev {vi}", f"link set {vi} up"], names.internet_netns)
    if not ipv6:
        return PodNetwork(ns, vp, vi, address, gateway, names.dns_address)
    ipv6_net.add_internet_side(names, index, vi)
    gateway6, address6 = ipv6_net.link_addresses(names, index)
    return PodNetwork(ns, vp, vi, address, gateway, names.dns_address, address6, gateway6)


def app_exec_argv(
    netns: str, resolv_conf: Path, argv: Sequence[str], *, uid: int = APP_UID, gid: int = APP_GID,
    pdeathsig: bool = False, run_dir: Path | None = None,
) -> list[str]:
    """argv that runs ``argv`` as the app container would: in the pod netns, with the pod's
    resolv.conf in a private mount namespace, as ``uid``/``gid``. ``pdeathsig``: the program is
    killed when the thread that spawned it exits (set after the uid change, which clears it).
    ``run_dir`` is mounted over ``/run`` (= ``/var/run``: the ServiceAccount volume, lab.kubeapi)."""
    mount = 'mount --bind "$1" /etc/resolv.conf && shift && '
    mount += 'mount --bind "$1" /run && shift && exec "$@"' if run_dir else 'exec "$@"'
    death = ["--pdeathsig", "KILL"] if pdeathsig else []
    return [
        *nsenter_argv(netns), "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", mount, "sh", str(resolv_conf), *([str(run_dir)] if run_dir else []),
        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *death,
        "--inh-caps", "+dac_read_search", "--ambient-caps", "+dac_read_search", "--", *argv,
    ]  # fmt: skip


def app_env(ca_file: Path, pod_label: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The app's environment: a small base, the lab CA trusted by the usual variables, ``env``."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM")}
    base.update({
        "HOME": "/tmp", "SSL_CERT_FILE": str(ca_file), "REQUESTS_CA_BUNDLE": str(ca_file),
        "CURL_CA_BUNDLE": str(ca_file), "PYTHONDONTWRITEBYTECODE": "1", "MESHPROBE_LAB_POD": pod_label,
    })  # fmt: skip
    base.update(env or {})
    return base


class Pod:
    """One running pod. Created and torn down by ``lab.Lab``."""

    def __init__(
        self, spec: PodSpec, net: PodNetwork, workdir: Path, ca_file: Path, access_log: bool
    ) -> None:
        self.spec = spec
        self.net = net
        self.workdir = workdir
        self.ca_file = ca_file
        self.thread = NetnsThread(net.netns)
        self.envoy = EnvoyProcess(net.netns, workdir, uid=spec.proxy_uid, gid=spec.proxy_gid)
        self.access_log_path: Path | None = workdir / "access.log" if access_log else None
        self.resolv_conf = workdir / "resolv.conf"
        self.xds = FileXds(workdir / "xds", self.access_log_path)
        self.dns_agent: Any = None
        self.agent: Any = None

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    @property
    def address(self) -> str:
        return self.net.pod_address

    @property
    def addresses(self) -> tuple[str, ...]:
        """The pod's IPs (``status.podIPs``): IPv4, then IPv6 for a dual-stack pod."""
        return (self.net.pod_address, *((self.net.address6,) if self.net.address6 else ()))

    def capture_config(self) -> iptables.CaptureConfig:
        return iptables.CaptureConfig.from_annotations(
            dict(self.spec.annotations),
            redirect_dns=self.spec.captures_dns,
            proxy_uid=str(self.spec.proxy_uid),
            proxy_gid=str(self.spec.proxy_gid),
            dns_servers=(self.net.dns_server,),
        )

    def setup_network(self) -> None:
        """Addresses, route, resolv.conf and the capture rules (the veth already exists)."""
        self.workdir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        ip_batch(
            [
                "link set lo up",
                f"addr add {self.net.pod_address}/30 dev {self.net.veth_pod}",
                f"link set {self.net.veth_pod} up",
                f"route add default via {self.net.gateway}",
            ],
            self.net.netns,
        )
        self.resolv_conf.write_text(f"nameserver {self.net.dns_server}\noptions timeout:1 attempts:2\n")
        self.resolv_conf.chmod(0o644)
        if self.spec.sidecar and self.spec.intercepts:
            run(
                [*nsenter_argv(self.net.netns), "iptables-restore", "--noflush"],
                stdin=iptables.restore_input(self.capture_config()),
            )
        if self.net.address6:
            captures = self.spec.sidecar and self.spec.intercepts
            rules = iptables.restore_input(self.capture_config(), 6) if captures else None
            net = self.net
            ipv6_net.configure_pod(net.netns, net.veth_pod, net.address6, net.gateway6, rules)
        if self.access_log_path is not None:
            self.access_log_path.touch()
            os.chown(self.access_log_path, self.spec.proxy_uid, self.spec.proxy_gid)

    def bootstrap(self) -> dict[str, Any]:
        """The bootstrap this pod's pilot-agent would write; LDS/CDS come from ``self.xds``."""
        return build_bootstrap(
            [], [],
            stats_inclusions=self.spec.stats_matcher,
            stats_annotations=self.spec.stats_annotations,
            node_id=f"sidecar~{self.address}~{self.spec.name}.{self.namespace}~{self.namespace}.svc.cluster.local",
            cluster=f"{self.spec.name}.{self.namespace}",
            dns_resolvers=[(self.net.dns_server, 53)],
            pod_ips=[self.address],
            xds_dir=str(self.xds.directory),
            status_listeners=True,
        )  # fmt: skip

    def restart_envoy(
        self, listeners: Sequence[Mapping[str, Any]], clusters: Sequence[Mapping[str, Any]]
    ) -> None:
        """Stop the running Envoy (if any) and spawn one with this config (does not wait)."""
        self.envoy.stop()
        self.xds.write_initial(listeners, clusters)
        self.envoy.spawn(self.bootstrap())

    def push(
        self,
        listeners: Sequence[Mapping[str, Any]],
        clusters: Sequence[Mapping[str, Any]],
        timeout: float = 5.0,
    ) -> PushResult:
        """Hand Envoy new LDS/CDS like an xDS push (no restart); says whether it was accepted."""
        return self.xds.push(listeners, clusters, self.update_counters, timeout)

    def update_counters(self) -> dict[str, int]:
        """``cluster_manager.cds.update_*``, ``listener_manager.lds.update_*`` and the warming
        gauges right now (OSError when admin does not answer)."""
        return parse_counters(self.admin_get(COUNTERS_PATH, timeout=3.0))

    def wait_live(self, timeout: float = 10.0) -> float:
        return self.envoy.wait_live(self.admin_request, timeout)

    def admin_request(self, path: str, timeout: float = 2.0, method: str = "GET") -> tuple[int, str]:
        return admin.request(self.thread, "127.0.0.1", 15000, path, method=method, timeout=timeout)

    def admin_get(self, path: str, timeout: float = 2.0) -> str:
        """Body of an Envoy admin GET (raises OSError when admin does not answer 200)."""
        status, body = self.admin_request(path, timeout=timeout)
        if status != 200:
            raise OSError(f"admin {path}: HTTP {status}")
        return body

    def http(
        self, port: int, path: str, *, method: str = "GET", source: str | None = None
    ) -> tuple[int, str]:
        """A request from the lab process to ``127.0.0.1:port`` (or from ``source``) in the pod netns."""
        host = "127.0.0.1" if source is None else self.address
        return admin.request(self.thread, host, port, path, method=method, source=source)

    def exec_argv(
        self, argv: Sequence[str], *, uid: int = APP_UID, gid: int = APP_GID, pdeathsig: bool = False,
        run_dir: Path | None = None,
    ) -> list[str]:
        return app_exec_argv(
            self.net.netns, self.resolv_conf, argv, uid=uid, gid=gid, pdeathsig=pdeathsig, run_dir=run_dir
        )

    def exec_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        return app_env(self.ca_file, f"{self.namespace}/{self.spec.name}", env)

    def exec(
        self,
        argv: Sequence[str],
        *,
        uid: int = APP_UID,
        gid: int = APP_GID,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` behind the sidecar (captured output, text)."""
        return subprocess.run(
            self.exec_argv(argv, uid=uid, gid=gid),
            env=self.exec_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=check,
        )

    def access_log(self) -> list[dict[str, Any]]:
        """Parsed JSON access-log lines (test oracle; empty when access logs are off)."""
        if self.access_log_path is None or not self.access_log_path.exists():
            return []
        out = []
        for line in self.access_log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def close(self) -> None:
        self.envoy.stop()
        self.thread.close()
