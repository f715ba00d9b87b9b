"""``Lab``: the whole lab as a context manager — the API tests and the CLI supervisor use.

    with Lab(objects, mode="REGISTRY_ONLY", internet=["pkg.lab.example"]) as lab:
        pod = lab.pod("default")                    # created on first use (one pod per name)
        done = pod.exec(["curl", "-sS", "https://pkg.lab.example/"])   # behind the sidecar
        lab.apply(new_objects)                      # regenerate + xDS push, no restart (≈20 ms)
        pod.admin_get("/config_dump?resource=dynamic_listeners")
        lab.access_log("default")                   # oracle only, with access_log=True

Parameters: ``objects`` (raw dicts, as ``kubectl get -o yaml``), ``mode`` (``--mode``, overrides
the mesh's outboundTrafficPolicy), ``mesh`` (a MeshConfig dict), ``internet`` (extra host names
the internet serves), ``access_log`` (JSON access logs, a test oracle; off by default like
Istio), ``pods`` (PodSpecs to start with; default one pod in ``default``), ``drain_seconds``
(quitquitquit's termination drain, 5 s in Istio), ``config_source`` (replaces ``lab.istiod.generate``,
e.g. ``handwritten_source``), ``run_id`` (normally random).

Methods and attributes: ``pod(namespace, name, **PodSpec fields)``, ``apply(objects, mode=,
allow_rejected=, push_delay=)`` (see its docstring; ``last_push`` and ``push_errors`` record the
outcome), ``access_log(ns, name)``, ``ready(ns, name)`` (``:15021/healthz/ready``), ``status()``,
``hosts`` / ``address_of(host)`` / ``drop_address`` / ``dns_address`` (the internet), ``ca_file``
(the run's CA), ``timings``, ``run_id``, ``close()``. A ``Pod`` has ``exec(argv, uid=, gid=, env=,
timeout=, input=)``, ``admin_get(path)``, ``http(port, path, method=, source=)``, ``push(listeners,
clusters)``, ``update_counters()``, ``access_log()``, ``envoy`` (pid, running(), stop()),
``dns_agent``, ``agent``, ``address``, ``net``. Create pods and call ``apply`` from any thread (a
lock serialises them); ``remove_pod(ns, name)`` tears one down.

With ``api=True`` the lab also runs its control plane (``lab.controlplane``): a stand-in
Kubernetes API server whose admin kubeconfig is ``kubeconfig``, the sidecar injector and a kubelet
that runs the pods created through it; the objects and mode become API objects and the API is
the mesh's source from then on. ``istio_crds=False`` leaves Istio's APIs out (a cluster without
Istio), ``native_sidecars`` is the injector's default, ``propagation_delay`` delays pushes of API
changes to the sidecars (istiod's debounce).

Everything is created under the run id and registered for cleanup right after creation (an
ExitStack, undone in reverse) — on success, exceptions, KeyboardInterrupt and SIGTERM (turned into
SystemExit while the lab is open in the main thread), and at interpreter exit for a Lab never
closed. Envoy gets ``--pdeathsig KILL``, so even SIGKILL leaves no sidecar running
(``lab.leftovers.sweep(run_id)`` removes the namespaces then).

``egress_gateway=True`` also runs ``istio-egressgateway`` in ``istio-system`` (``lab.gateway``):
``gateway`` is its handle (an ``EgressGateway``: ``admin_get``, ``access_log()``, ``address``,
``envoy``), its config comes from ``gateway_source`` (default ``lab.istiod.generate_gateway``) and
is pushed by ``apply`` like the sidecars', and the sidecars see its Service and EndpointSlice.
Every sidecar presents the mesh CA's certificate for its pod's service account on ISTIO_MUTUAL
(``mesh_ca_file``, ``workload_cert(ns, sa)``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

from lab.agent import PilotAgent
from lab.certs import LabCA, MeshCA, WorkloadCert
from lab.dnsagent import DnsAgent
from lab.gateway import EgressGateway, GatewaySource, gateway_status
from lab.internet import Internet, ServedHost, plan_hosts, refresh_internet, start_internet
from lab.names import RunNames, new_run_id
from lab.objects import mesh_config_of
from lab.pod import Pod, PodSpec, create_pod_network
from lab.sources import ConfigOut, ConfigSource, LabStartError, handwritten_source, istiod_source
from lab.xds import PushResult

T = TypeVar("T")

__all__ = ["ConfigOut", "ConfigSource", "Lab", "LabStartError", "handwritten_source", "istiod_source"]


class Lab:
    """An Istio-like mesh on this host (see the module docstring for the API)."""

    kubeconfig: Path | None = None

    def __init__(
        self,
        objects: Sequence[Mapping[str, Any]] = (),
        *,
        mode: str | None = None,
        mesh: Mapping[str, Any] | None = None,
        internet: Iterable[str] = (),
        access_log: bool = False,
        pods: Sequence[PodSpec] | None = None,
        drain_seconds: float = 5.0,
        config_source: ConfigSource | None = None,
        run_id: str | None = None,
        api: bool = False,
        istio_crds: bool = True,
        native_sidecars: bool = False,
        propagation_delay: float = 0.0,
        egress_gateway: bool = False,
        gateway_source: GatewaySource | None = None,
        ipv6: bool = False,
    ) -> None:
        self.objects = list(objects)
        self.ipv6 = ipv6  # internet hosts get IPv6 addresses and AAAA answers (pods: PodSpec.ipv6)
        self.mode = mode
        # An explicit ``mesh`` wins; otherwise the mesh comes from an ``istio`` ConfigMap among the
        # objects, as istiod reads it (and follows the objects on ``apply``).
        self._mesh_given = mesh is not None
        self.mesh = dict(mesh) if mesh is not None else dict(mesh_config_of(self.objects) or {})
        self.extra_hosts = [h.lower() for h in internet]
        self.access_log_enabled = access_log
        self.initial_pods = list(pods) if pods is not None else [PodSpec()]
        self.drain_seconds = drain_seconds
        self.config_source: ConfigSource = config_source or self._istiod_source
        self.names = RunNames(run_id or new_run_id())
        self.pods: dict[tuple[str, str], Pod] = {}
        self._pod_stacks: dict[tuple[str, str], contextlib.ExitStack] = {}
        self._slots: list[int] = []  # freed pod slots (netns index), reused lowest first
        self._next_slot = 0
        self.timings: dict[str, float] = {}
        self._stack = contextlib.ExitStack()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._internet: Internet | None = None
        self._workdir: Path | None = None
        self._ca: LabCA | None = None
        self._lock = threading.RLock()
        self._old_sigterm: Any = None
        self._spawner: ThreadPoolExecutor | None = None
        self.last_push: dict[tuple[str, str], PushResult] = {}
        self.push_errors: list[str] = []
        self._api_options: dict[str, Any] | None = (
            {
                "istio_crds": istio_crds,
                "native_sidecars": native_sidecars,
                "propagation_delay": propagation_delay,
            }
            if api
            else None
        )
        self.control_plane: Any = None
        self.egress_gateway = egress_gateway
        self.gateway_source = gateway_source
        self.gateway: EgressGateway | None = None
        self._mesh_ca: MeshCA | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.names.run_id

    @property
    def workdir(self) -> Path:
        assert self._workdir is not None, "lab not started"
        return self._workdir

    @property
    def ca_file(self) -> Path:
        assert self._ca is not None, "lab not started"
        return self._ca.ca_file

    @property
    def mesh_ca_file(self) -> Path:
        """The mesh root (what ISTIO_MUTUAL validates against), distinct from ``ca_file``."""
        assert self._mesh_ca is not None, "lab not started"
        return self._mesh_ca.root_file

    def workload_cert(self, namespace: str, service_account: str) -> WorkloadCert:
        """The mesh CA's certificate for ``spiffe://cluster.local/ns/NS/sa/SA`` (files)."""
        assert self._mesh_ca is not None, "lab not started"
        return self._mesh_ca.workload(namespace, service_account)

    def __enter__(self) -> Lab:
        self._install_sigterm()
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> Lab:
        started = time.monotonic()
        atexit.register(self.close)  # a Lab never closed still cleans up when the interpreter exits
        workdir = Path(tempfile.mkdtemp(prefix=f"meshprobe-lab-{self.run_id}-"))
        workdir.chmod(0o755)
        self._workdir = workdir
        self._stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        self._ca = LabCA(workdir)
        self._mesh_ca = MeshCA(workdir)
        # Envoy runs with --pdeathsig KILL, which fires when the *thread* that spawned it exits:
        # spawn from one thread that lives exactly as long as the lab.
        spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lab-{self.run_id}-spawn")
        self._stack.callback(spawner.shutdown, wait=True)
        self._spawner = spawner
        self._start_loop()
        self._start_internet()
        self.timings["internet"] = time.monotonic() - started
        if self.egress_gateway:
            self._start_gateway()
        for spec in self.initial_pods:
            self._add_pod(spec, wait=False)
        for pod in self.pods.values():
            if pod.spec.sidecar and pod.spec.proxy_starts:
                self._wait_pod(pod)
        if self._api_options is not None:
            self._start_control_plane()
        self.timings["up"] = time.monotonic() - started
        return self

    def _start_control_plane(self) -> None:
        from lab.controlplane import ControlPlane

        assert self._api_options is not None
        plane = ControlPlane(self, self.workdir / "control-plane", **self._api_options)
        self._stack.callback(plane.close)
        self.kubeconfig = plane.start(self.objects, self.mesh, self.mode)
        self.control_plane = plane
        # From now on the API is the source of the mesh: the istio ConfigMap carries the mode. Push
        # it once now: until then the lab's own mesh config has no mode, and a pod built before the
        # next background sync would get ALLOW_ANY's catch-all.
        with self._lock:
            self.mode = None
            self._mesh_given = False
        plane.push()

    def close(self) -> None:
        """Tear everything down (idempotent; never raises)."""
        with contextlib.suppress(Exception):
            self._stack.close()
        self.pods.clear()
        self._restore_sigterm()
        atexit.unregister(self.close)

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_term(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        self._old_sigterm = signal.signal(signal.SIGTERM, on_term)

    def _restore_sigterm(self) -> None:
        if self._old_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"lab-{self.run_id}", daemon=True)
        thread.start()
        self._loop = loop

        def stop_loop() -> None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            with contextlib.suppress(Exception):
                loop.close()

        self._stack.callback(stop_loop)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ---- internet ------------------------------------------------------------------------------

    def _start_internet(self) -> None:
        assert self._ca is not None
        hosts = plan_hosts(self.names, self.objects, self.extra_hosts, ipv6=self.ipv6)
        self._internet = start_internet(self.names, self._ca, hosts, self._stack, self._call)

    @property
    def hosts(self) -> list[ServedHost]:
        """What the internet serves (name, addresses, port → protocol)."""
        assert self._internet is not None
        return list(self._internet.hosts)

    def address_of(self, host: str) -> str:
        """The first address of an internet host (KeyError when the lab does not serve it)."""
        for served in self.hosts:
            if served.name == host.lower():
                return served.addresses[0]
        raise KeyError(host)

    @property
    def drop_address(self) -> str:
        return self.names.drop_address

    @property
    def dns_address(self) -> str:
        return self.names.dns_address

    def _refresh_internet(self) -> None:
        internet = self._internet
        assert internet is not None
        previous = dict(internet.history)
        hosts = plan_hosts(self.names, self.objects, self.extra_hosts, previous, ipv6=self.ipv6)
        refresh_internet(internet, hosts, self._call)

    # ---- pods ----------------------------------------------------------------------------------

    def pod(self, namespace: str = "default", name: str = "probe", **spec: Any) -> Pod:
        """The pod ``namespace/name``, started on first use with ``PodSpec(**spec)``."""
        with self._lock:
            existing = self.pods.get((namespace, name))
            if existing is not None:
                return existing
            return self._add_pod(PodSpec(namespace=namespace, name=name, **spec), wait=True)

    def _add_pod(self, spec: PodSpec, *, wait: bool) -> Pod:
        key = (spec.namespace, spec.name)
        index = self._take_slot()
        stack = contextlib.ExitStack()
        self._pod_stacks[key] = stack
        self._stack.callback(stack.close)
        stack.callback(self._free_slot, index)
        try:
            net = create_pod_network(self.names, index, stack, ipv6=spec.ipv6)
            pod = Pod(spec, net, self.workdir / f"pod{index}", self.ca_file, self.access_log_enabled)
            stack.callback(pod.close)
            pod.setup_network()
            self.pods[key] = pod
            if spec.sidecar:
                self._start_agents(pod, stack)
            if spec.sidecar and spec.proxy_starts:
                listeners, clusters, table = self._generate(spec)
                if pod.dns_agent is not None:
                    pod.dns_agent.load(table)
                self._restart_envoy(pod, listeners, clusters)
                if wait:
                    self._wait_pod(pod)
        except BaseException:
            self.remove_pod(spec.namespace, spec.name)
            raise
        return pod

    def remove_pod(self, namespace: str, name: str) -> bool:
        """Tear one pod down (its Envoy, agents, netns); False when there is no such pod."""
        with self._lock:
            self.pods.pop((namespace, name), None)
            stack = self._pod_stacks.pop((namespace, name), None)
        if stack is None:
            return False
        with contextlib.suppress(Exception):
            stack.close()
        return True

    def restart_sidecar(self, namespace: str, name: str) -> None:
        """Start a stopped sidecar again with fresh config (the kubelet restarting a native
        sidecar that exited); a running one is left alone."""
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None or not (pod.spec.sidecar and pod.spec.proxy_starts) or pod.envoy.running():
                return
            listeners, clusters, table = self._generate(pod.spec)
            if pod.dns_agent is not None:
                pod.dns_agent.load(table)
            if pod.agent is not None and pod.agent.quitting:
                self._call(pod.agent.restart())
            self._restart_envoy(pod, listeners, clusters)
        self._wait_pod(pod)

    def _take_slot(self) -> int:
        if self._slots:
            self._slots.sort()
            return self._slots.pop(0)
        self._next_slot += 1
        return self._next_slot - 1

    def _free_slot(self, index: int) -> None:
        self._slots.append(index)

    def _restart_envoy(
        self, pod: Pod, listeners: list[dict[str, Any]], clusters: list[dict[str, Any]]
    ) -> None:
        assert self._spawner is not None
        self._spawner.submit(pod.restart_envoy, listeners, clusters).result(timeout=30)

    def _istiod_source(
        self, objects: Sequence[Mapping[str, Any]], spec: PodSpec, mesh: Mapping[str, Any], mode: str | None
    ) -> ConfigOut:
        pod = self.pods.get((spec.namespace, spec.name))
        ips = pod.addresses if pod is not None else ()
        cert = self.workload_cert(spec.namespace, spec.service_account)
        return istiod_source(objects, spec, mesh, mode, ca_file=str(self.ca_file), pod_ips=ips,
                             mesh_ca_file=str(self.mesh_ca_file), cert_chain_file=str(cert.cert_chain_file),
                             private_key_file=str(cert.private_key_file))  # fmt: skip

    def mesh_objects(self) -> list[Mapping[str, Any]]:
        """The objects the proxies' config is generated from: the lab's, plus the egress gateway's
        Service and EndpointSlice when it runs (unless the objects define them)."""
        from lab.gateway_lab import mesh_objects

        return mesh_objects(self)

    def _generate(self, spec: PodSpec) -> ConfigOut:
        try:
            return self.config_source(self.mesh_objects(), spec, self.mesh, self.mode)
        except Exception as exc:  # the generator's bug must not leave a half-built lab
            raise LabStartError(f"config generation for {spec.namespace}/{spec.name} failed: {exc}") from exc

    def _start_agents(self, pod: Pod, stack: contextlib.ExitStack) -> None:
        internet = self._internet
        assert internet is not None
        dns_agent = (
            DnsAgent(pod.thread, internet.resolve, uid=pod.spec.proxy_uid, gid=pod.spec.proxy_gid)
            if pod.spec.captures_dns
            else None
        )
        if dns_agent is not None:
            self._call(dns_agent.start())
            stack.callback(lambda: self._call(dns_agent.stop(), timeout=5))
        agent = PilotAgent(
            pod.thread,
            dns_ready=(lambda: dns_agent.ready) if dns_agent else None,
            on_quit=pod.envoy.stop,
            drain_seconds=self.drain_seconds,
        )
        self._call(agent.start())
        stack.callback(lambda: self._call(agent.stop(), timeout=5))
        pod.dns_agent, pod.agent = dns_agent, agent

    def _wait_pod(self, pod: Pod) -> None:
        try:
            pod.wait_live()
        except RuntimeError as exc:
            raise LabStartError(f"pod {pod.namespace}/{pod.spec.name}: {exc}") from exc
        try:
            counters = pod.update_counters()
        except OSError as exc:
            raise LabStartError(f"pod {pod.namespace}/{pod.spec.name}: Envoy admin: {exc}") from exc
        rejected = [
            k for k in counters if k.endswith(("update_rejected", "update_failure")) and counters[k] > 0
        ]
        if rejected:
            raise LabStartError(
                f"pod {pod.namespace}/{pod.spec.name}: Envoy rejected the generated config "
                f"({', '.join(sorted(rejected))}; see {pod.envoy.log_path})"
            )

    # ---- config --------------------------------------------------------------------------------

    def apply(
        self,
        objects: Sequence[Mapping[str, Any]] | None = None,
        *,
        mode: str | None = None,
        allow_rejected: bool = False,
        push_delay: float = 0.0,
    ) -> float:
        """Replace the config and push every pod's regenerated sidecar config (CDS then LDS, as
        files Envoy watches — no restart); returns the seconds until every Envoy acknowledged.
        A rejected (NACKed) push raises LabStartError unless ``allow_rejected``; either way
        ``last_push`` records each pod's ``PushResult``. A stopped Envoy (after quitquitquit)
        is restarted instead, with its agent. ``push_delay`` > 0 models istiod's debounce and
        push latency: the objects are stored now, the push happens that many seconds later in
        the background (``apply`` returns 0.0; errors land in ``push_errors``)."""
        with self._lock:
            if objects is not None:
                self.objects = list(objects)
                if not self._mesh_given:
                    self.mesh = dict(mesh_config_of(self.objects) or {})
            if mode is not None:
                self.mode = mode
        if push_delay > 0:
            timer = threading.Timer(push_delay, self._delayed_push, kwargs={"allow_rejected": allow_rejected})
            timer.daemon = True
            self._stack.callback(timer.cancel)
            timer.start()
            return 0.0
        started = time.monotonic()
        self._push_all(allow_rejected)
        self.timings["apply"] = time.monotonic() - started
        return self.timings["apply"]

    def _delayed_push(self, allow_rejected: bool) -> None:
        try:
            self._push_all(allow_rejected)
        except Exception as exc:
            self.push_errors.append(str(exc))

    def _push_all(self, allow_rejected: bool) -> None:
        with self._lock:
            self._refresh_internet()
            if self.gateway is not None:
                self._push_gateway(allow_rejected)
            restarted = []
            for pod in list(self.pods.values()):
                if not (pod.spec.sidecar and pod.spec.proxy_starts):
                    continue
                listeners, clusters, table = self._generate(pod.spec)
                if pod.dns_agent is not None:
                    pod.dns_agent.load(table)
                if pod.agent is not None and pod.agent.quitting:
                    self._call(pod.agent.restart())
                if not pod.envoy.running():
                    self._restart_envoy(pod, listeners, clusters)
                    restarted.append(pod)
                    continue
                self._push_pod(pod, listeners, clusters, allow_rejected)
            for pod in restarted:
                self._wait_pod(pod)

    def _push_pod(
        self, pod: Pod, listeners: list[dict[str, Any]], clusters: list[dict[str, Any]], allow_rejected: bool
    ) -> None:
        where = f"pod {pod.namespace}/{pod.spec.name}"
        try:
            result = pod.push(listeners, clusters)
        except OSError as exc:
            raise LabStartError(f"{where}: Envoy admin: {exc}") from exc
        self.last_push[(pod.namespace, pod.spec.name)] = result
        if not result.accepted and not allow_rejected:
            raise LabStartError(
                f"{where}: Envoy did not accept the config (cds {result.cds}, lds {result.lds}; "
                f"see {pod.envoy.log_path})"
            )

    # ---- egress gateway (lab.gateway_lab) ------------------------------------------------------

    def _start_gateway(self) -> None:
        from lab.gateway_lab import start_gateway

        start_gateway(self)

    def _push_gateway(self, allow_rejected: bool) -> None:
        from lab.gateway_lab import push_gateway

        push_gateway(self, allow_rejected)

    def access_log(self, namespace: str = "default", name: str = "probe") -> list[dict[str, Any]]:
        """The pod's Envoy access log as dicts (Istio's JSON keys); only with ``access_log=True``."""
        return self.pod(namespace, name).access_log()

    def ready(self, namespace: str = "default", name: str = "probe") -> bool:
        """What ``:15021/healthz/ready`` says for that pod."""
        try:
            status, _ = self.pod(namespace, name).http(15021, "/healthz/ready")
        except OSError:
            return False
        return status == 200

    def status(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``meshprobe lab status``)."""
        return {
            "run_id": self.run_id,
            "mode": self.mode or (self.mesh.get("outboundTrafficPolicy") or {}).get("mode"),
            "dns": self.dns_address,
            "drop_address": self.drop_address,
            "pods": [
                {
                    "namespace": p.namespace,
                    "name": p.spec.name,
                    "netns": p.net.netns,
                    "address": p.address,
                    "envoy_pid": p.envoy.pid,
                    "envoy_running": p.envoy.running(),
                    "dns_capture": p.spec.captures_dns,
                    "ready": self.ready(p.namespace, p.spec.name),
                    "config_version": p.xds.version,
                }
                for p in self.pods.values()
            ],
            "hosts": [
                {"name": h.name, "addresses": list(h.addresses), "ports": dict(h.ports)} for h in self.hosts
            ],
            **({"egress_gateway": gateway_status(self.gateway)} if self.gateway is not None else {}),
        }
