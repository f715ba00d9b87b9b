"""What `meshprobe check` does for each context and namespace, in parallel: connect
(``diag.cluster``), read the live mesh (``diag.live.meshread``), parse the targets and presets, run the
probe (a per-run Job, or an ephemeral container with ``--from``: ``diag.pod.launcher``), then correlate
observed, actual and predicted into one report (``diag.assess.build_report``).
``diag.commands.check`` is the command line around it; ``meshprobe demo`` calls ``run`` too.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diag.cluster import Cluster
    from diag.live.meshread import LiveMesh
    from diag.model.resources import MeshConfig, Resource
    from diag.pod.spec import Workload
    from diag.pod.watch import Launched
    from diag.report import Report
    from probes.model import TargetSpec

WORKLOAD_KINDS = {
    "deploy": ("apps", "deployments"),
    "deployment": ("apps", "deployments"),
    "sts": ("apps", "statefulsets"),
    "statefulset": ("apps", "statefulsets"),
    "ds": ("apps", "daemonsets"),
    "daemonset": ("apps", "daemonsets"),
    "pod": ("", "pods"),
    "po": ("", "pods"),
}


# Needed to parse the targets against the live mesh, before the probe Job can be created.
PARSE_MODULES = (
    "diag.model.loader", "diag.model.snapshot", "diag.predict.sidecar", "diag.predict.visibility",
    "diag.assess",
)
REPORT_MODULES = ("diag.report", "diag.rules", "diag.rules.fixcheck", "diag.live.path", "diag.lint.run")


class Options:
    """The flags of one `meshprobe check`."""

    def __init__(
        self,
        targets: list[str],
        presets: list[str],
        namespaces: list[str],
        contexts: list[str],
        kubeconfig: str | None,
        like: str | None,
        from_pod: str | None,
        image: str | None,
        timeout: float,
        expect: str,
        output: str,
        keep_pod: bool,
    ) -> None:
        self.targets, self.presets, self.namespaces, self.contexts = targets, presets, namespaces, contexts
        self.kubeconfig, self.like, self.from_pod, self.image = kubeconfig, like, from_pod, image
        self.timeout, self.expect, self.output, self.keep_pod = timeout, expect, output, keep_pod
        self.accept_4xx: set[str] = set()


def run(o: Options) -> list[Report]:
    """Every (context, namespace) run, in parallel; reports in a stable order."""
    from concurrent.futures import ThreadPoolExecutor

    contexts: list[str | None] = list(o.contexts) or [None]
    namespaces: list[str | None] = list(o.namespaces) or [None]
    pairs = [(c, n) for c in contexts for n in namespaces]
    if len(pairs) == 1:
        return [_one(o, *pairs[0])]
    with ThreadPoolExecutor(max_workers=min(8, len(pairs))) as pool:
        return list(pool.map(lambda pair: _one(o, *pair), pairs))


def _one(o: Options, context: str | None, namespace: str | None) -> Report:
    from diag.cluster import Cluster
    from diag.live.meshread import read_mesh
    from diag.pod import launcher
    from diag.pod.image import PROBE_IMAGE
    from diag.pod.spec import ProbeRun

    parsing = _warm(PARSE_MODULES)  # while the client loads and the mesh is read
    cluster = Cluster.connect(o.kubeconfig, context, namespace)
    try:
        workload, pod = _workload(cluster, o)
        ns = workload.namespace if workload is not None else cluster.namespace
        live = read_mesh(cluster, [ns], revision=(workload.labels.get("istio.io/rev") if workload else None))
        ns_labels = _namespace_labels(live.objects, ns)
        ambient = (workload is not None and workload.ambient) or ns_labels.get(
            "istio.io/dataplane-mode"
        ) == "ambient"
        parsing.join()
        specs, objects, mesh = _targets(o, live.objects, ns, workload)
        native = cluster.server_version() >= (1, 29)
        if pod is not None:  # --from: the pod's own sidecar, never quit
            native = any(
                c.get("name") == "istio-proxy" and c.get("restartPolicy") == "Always"
                for c in (pod.get("spec") or {}).get("initContainers") or []
            )
        plan = _plan(o, specs, native=native, ambient=ambient, created=pod is None)
        run_ = ProbeRun(
            secrets.token_hex(4),
            ns,
            o.image or PROBE_IMAGE,
            plan,
            native_sidecar=native,
            deadline_s=int(60 + o.timeout * 6 * max(1, len(specs) // 32 + 1)),
            like=workload,
            inject=not ambient,  # an ambient pod has no sidecar: ztunnel carries its traffic
        )
        hosts = sorted({s.host for s in specs})
        _warm(_report_modules(o.output))
        phase = _phase_printer(o, cluster.context, ns)
        try:
            start = _start_timeout()
            if pod is not None:
                launched = launcher.run_ephemeral(
                    cluster, run_, pod["metadata"]["name"], start_timeout=start, phase=phase
                )
            else:
                launched = launcher.run_job(
                    cluster, run_, hosts, keep=o.keep_pod, start_timeout=start, phase=phase
                )
        finally:
            phase("")
        return _report(o, cluster, ns, workload, pod, live, launched, specs, objects, mesh, ambient)
    finally:
        cluster.close()


def _warm(modules: tuple[str, ...]) -> threading.Thread:
    """Import ``modules`` in the background while the main thread waits on the API (reading the
    mesh, the probe pod starting): work it would otherwise do later, on the critical path. The
    main thread imports them again (a no-op once loaded) and reports a real failure itself."""

    def load() -> None:
        import importlib

        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the main thread's own import reports it
                continue

    thread = threading.Thread(target=load, name="meshprobe-warm-imports", daemon=True)
    thread.start()
    return thread


def _report_modules(output: str) -> tuple[str, ...]:
    """What the report needs after the probe: predictions, rules, fix checks, and the renderer of
    this output only (the text renderer loads rich; JSON needs none)."""
    renderer = {"text": ("diag.render.report",), "junit": ("diag.render.junit",)}.get(output, ())
    return REPORT_MODULES + renderer


def _start_timeout() -> float:
    """How long the probe pod may take to be scheduled, pulled and get a ready sidecar
    (``MESHPROBE_POD_START_TIMEOUT``, seconds; default 90)."""
    import os

    try:
        return max(1.0, float(os.environ.get("MESHPROBE_POD_START_TIMEOUT", "90")))
    except ValueError:
        return 90.0


def _workload(cluster: Cluster, o: Options) -> tuple[Workload | None, dict[str, Any] | None]:
    from diag.cluster import NotFound, resource_path
    from diag.errors import UsageError
    from diag.pod.spec import Workload

    ref = o.like or o.from_pod
    if ref is None:
        return None, None
    kind, _, name = ref.partition("/")
    group, resource = WORKLOAD_KINDS[kind.lower()]
    ns = cluster.namespace
    try:
        obj = cluster.get(resource_path(group, "v1", resource, ns, name), what=f"get {resource} {ns}/{name}")
    except NotFound:
        raise UsageError(f"{ref} not found in namespace {ns}") from None
    template = obj if resource == "pods" else (obj.get("spec") or {}).get("template") or {}
    workload = Workload.from_template(resource.rstrip("s"), name, ns, template)
    return workload, (obj if o.from_pod else None)


def _namespace_labels(objects: list[dict[str, Any]], namespace: str) -> dict[str, str]:
    for obj in objects:
        if obj.get("kind") == "Namespace" and (obj.get("metadata") or {}).get("name") == namespace:
            return dict((obj.get("metadata") or {}).get("labels") or {})
    return {}


def _targets(
    o: Options, raw_objects: list[dict[str, Any]], namespace: str, workload: Workload | None
) -> tuple[list[TargetSpec], list[Resource], MeshConfig | None]:
    from diag.assess import target_specs
    from diag.model.loader import load_documents
    from diag.model.snapshot import Snapshot

    loaded = load_documents(raw_objects, origin="cluster")
    objects = list(loaded.objects)
    snapshot = Snapshot.build(objects, loaded.mesh)
    raw = list(o.targets) + [t for t in _preset_targets(o, workload) if t not in o.targets]
    labels = dict(workload.labels) if workload is not None else {}
    return target_specs(raw, snapshot, namespace, labels), objects, loaded.mesh


def _preset_targets(o: Options, workload: Workload | None) -> list[str]:
    """The presets' targets; their HTTP(S) targets count an origin's 4xx as reached
    (``o.accept_4xx``). Package-manager presets find their hosts in the ``--like`` workload's
    environment first, then this machine's package managers."""
    if not o.presets:
        return []
    from diag.errors import UsageError
    from diag.presets import PresetError, expand_preset

    env = dict(workload.env) if workload is not None else None
    out: list[str] = []
    for spec in o.presets:
        try:
            preset = expand_preset(spec, env=env)
        except PresetError as exc:
            raise UsageError(str(exc)) from None
        for planned in preset.planned_targets():
            out.append(planned.raw)
            if planned.accept_4xx:
                o.accept_4xx.add(planned.raw)
    return out


def _plan(
    o: Options, specs: list[TargetSpec], *, native: bool, ambient: bool, created: bool
) -> dict[str, Any]:
    """The probe's plan (docs/probe.md): one entry per target, and the sidecar handling described in
    docs/probe-pod.md."""
    ports = {str(s.port): s.protocol.upper() for s in specs if s.protocol in ("http", "https", "tls")}
    return {
        "schema": "meshprobe.plan/v1",
        "targets": [
            {"target": s.raw, "expect": o.expect, **({"accept_4xx": True} if s.raw in o.accept_4xx else {})}
            for s in specs
        ],
        "options": {"timeout": o.timeout, "port_protocols": ports},
        "sidecar": {
            "mode": "off" if ambient else "auto",
            "ready_timeout": min(30.0, _start_timeout()),
            "quit": created and not native and not ambient,
            "native": native,
        },
    }


def _phase_printer(o: Options, context: str, namespace: str) -> Callable[[str], None]:
    if o.output != "text" or not sys.stderr.isatty():
        return lambda _: None
    from diag.render.progress import Spinner

    return Spinner(f"{context}/{namespace}").update


def _report(
    o: Options,
    cluster: Cluster,
    ns: str,
    workload: Workload | None,
    pod: dict[str, Any] | None,
    live: LiveMesh,
    launched: Launched,
    specs: list[TargetSpec],
    objects: list[Resource],
    mesh: MeshConfig | None,
    ambient: bool,
) -> Report:
    from diag.assess import build_report
    from diag.errors import ProbePodFailed
    from probes.model import ProbeReport, from_json

    if launched.result is None:
        raise ProbePodFailed("the probe printed no result")
    try:
        probe = from_json(ProbeReport, launched.result)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbePodFailed(f"the probe's result is malformed: {exc}") from None
    kind = "ephemeral" if pod is not None else ("like" if workload is not None else "pod")
    dataplane = "ambient" if ambient else ("sidecar" if launched.injected else "none")
    notes = [*live.notes, *launched.notes]
    if workload is not None and workload.proxy_env:
        notes.append(
            f"{workload.ref} sets proxy variables ({', '.join(sorted(workload.proxy_env))}): "
            "its own clients may go through that proxy; the probe does not"
        )
    labels = dict(workload.labels) if workload is not None else {}
    from diag.live.gateway import GatewayConfigs

    return build_report(
        specs,
        objects,
        mesh,
        source_kind=kind,
        context=cluster.context,
        namespace=ns,
        labels=labels,
        probe=probe,
        expect=o.expect,
        dataplane=dataplane,
        notes=notes,
        native=launched.native,
        mesh_unknown=live.mesh_unreadable,
        service_account=(workload.service_account if workload is not None else None) or "default",
        gateway_configs=GatewayConfigs(cluster),  # the gateway hop's own config (diag.live.gateway)
    )
