"""One pod's life on the lab's node: the kubelet's sync loop for a single pod (see
``lab.kubelet`` for the behaviour modelled and its Kubernetes sources).

A ``PodWorker`` owns a thread that schedules the pod, creates its lab pod, starts and watches its
containers (host processes in the pod netns, killed with the thread that spawned them), and
publishes ``status`` through the store whenever it changes.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab import images, kubeapi
from lab.containers import Container, container_env, now
from lab.injector import PROXY_CONTAINER, proxy_config, sidecar_container
from lab.podstatus import pod_status

POLL_S = 0.05
READY_WAIT_S = 30.0


class PodWorker:
    """The sync loop of one pod (see the module docstring)."""

    def __init__(self, kubelet: Any, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        self.kubelet = kubelet
        self.namespace = str(meta.get("namespace"))
        self.name = str(meta.get("name"))
        self.uid = str(meta.get("uid"))
        self.key = (self.namespace, self.name)
        self.pod = dict(pod)
        self.dir = kubelet.workdir / f"{self.namespace}_{self.name}_{self.uid}"
        self.containers: dict[str, Container] = {}
        self.ephemeral: dict[str, Container] = {}
        self.sidecar: Mapping[str, Any] | None = None
        self.native = False
        self.sidecar_restarts = 0
        self.sidecar_state: dict[str, Any] = {"waiting": {"reason": "PodInitializing"}}
        self.lab_pod: Any = None
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.conditions: dict[str, tuple[str, str | None, str | None]] = {}
        self.start_time: str | None = None
        self._started_mono: float | None = None
        self._stop = threading.Event()
        self._remove = True
        self._lock = threading.Lock()
        self._published: dict[str, Any] | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"kubelet-{self.namespace}-{self.name}", daemon=True
        )

    # ---- control from the kubelet --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def update(self, pod: Mapping[str, Any]) -> None:
        with self._lock:
            self.pod = dict(pod)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.stop(remove=True)

    def stop(self, *, remove: bool) -> None:
        self._remove = remove
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def log_path(self, container: str) -> Path | None:
        if container == PROXY_CONTAINER and self.lab_pod is not None:
            return Path(self.lab_pod.envoy.log_path)
        found = self.containers.get(container) or self.ephemeral.get(container)
        return found.log if found is not None and found.state.keys() != {"waiting"} else None

    def container_running(self, name: str) -> bool:
        if name == PROXY_CONTAINER:
            return self.lab_pod is not None and self.lab_pod.envoy.running()
        found = self.containers.get(name) or self.ephemeral.get(name)
        return found is not None and found.running()

    # ---- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self._schedule() and self._pull() and self._sandbox():
                self._loop()
        except Exception as exc:  # a lab bug must surface as a failed pod, not a silent hang
            self.phase, self.reason, self.message = "Failed", "LabError", f"lab kubelet: {exc}"
            with contextlib.suppress(Exception):
                self._publish()
        finally:
            self._teardown()

    def spec(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.pod.get("spec") or {})

    def _schedule(self) -> bool:
        spec = self.spec()
        selector = spec.get("nodeSelector") or {}
        fits = all(self.kubelet.node_labels.get(k) == v for k, v in selector.items())
        if self.kubelet.faults.unschedulable or not fits:
            reason = "didn't match Pod's node affinity/selector" if not fits else "had untolerated taint(s)"
            self.conditions["PodScheduled"] = (
                "False",
                "Unschedulable",
                f"0/1 nodes are available: 1 node(s) {reason}. preemption: 0/1 "
                "nodes are available: 1 Preemption is not helpful for scheduling.",
            )
            self._publish()
            self._stop.wait()
            return False
        if not spec.get("nodeName"):
            pod = self.kubelet.store.get("pods", self.namespace, self.name) or dict(self.pod)
            pod["spec"] = {**(pod.get("spec") or spec), "nodeName": self.kubelet.node_name}
            with contextlib.suppress(Exception):
                self.pod = self.kubelet.store.update(pod)
        self.conditions["PodScheduled"] = ("True", None, None)
        self.start_time = now()
        self._started_mono = time.monotonic()
        self.sidecar, self.native = sidecar_container(self.pod)
        for c in spec.get("containers") or []:
            if c.get("name") != PROXY_CONTAINER:
                self.containers[str(c.get("name"))] = Container(c, self.dir / f"{c.get('name')}.log")
        self.conditions["Initialized"] = ("False", "ContainersNotInitialized", None)
        self._publish()
        return not self._stop.wait(self.kubelet.faults.start_delay)

    def _pull(self) -> bool:
        bad = []
        for container in self.containers.values():
            try:
                images.container_argv(container.spec)
            except images.ImagePullError as exc:
                container.state = {"waiting": {"reason": "ErrImagePull", "message": str(exc)}}
                bad.append(container)
        if not bad:
            return True
        self._publish()
        if self._stop.wait(0.5):
            return False
        for container in bad:
            image = container.spec.get("image")
            container.state = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            }
        self._publish()
        while not self._stop.wait(POLL_S * 4):
            if self._deadline_passed():
                self._fail_deadline()
                return False
        return False

    def _sandbox(self) -> bool:
        meta = self.pod.get("metadata") or {}
        fields: dict[str, Any] = {
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
            "sidecar": self.sidecar is not None,
            "proxy_starts": not self.kubelet.faults.proxy_never_starts,
        }
        if self.sidecar is not None:
            ctx = self.sidecar.get("securityContext") or {}
            fields["proxy_uid"] = int(ctx.get("runAsUser", 1337))
            fields["proxy_gid"] = int(ctx.get("runAsGroup", fields["proxy_uid"]))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lab_pod = self.kubelet.lab.pod(self.namespace, self.name, **fields)
        self.conditions["Initialized"] = ("True", None, None)
        if self.sidecar is not None:
            self.sidecar_state = (
                {"running": {"startedAt": now()}}
                if self.lab_pod.envoy.running()
                else {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off restarting failed container",
                    }
                }
            )
        self._publish()
        if self.sidecar is not None and (self.native or self._holds()):
            deadline = time.monotonic() + READY_WAIT_S
            while not self.sidecar_ready():
                if self._stop.wait(POLL_S) or (time.monotonic() > deadline and self._deadline_passed()):
                    return False
                if self._deadline_passed():
                    self._fail_deadline()
                    return False
                self._publish()
        for container in self.containers.values():
            self._start(container)
        return True

    def _holds(self) -> bool:
        return bool(proxy_config(self.pod).get("holdApplicationUntilProxyStarts"))

    def sidecar_ready(self) -> bool:
        return (
            self.sidecar is not None
            and self.lab_pod is not None
            and self.kubelet.lab.ready(self.namespace, self.name)
        )

    def _start(self, container: Container) -> None:
        argv = images.container_argv(container.spec)
        uid, gid = self._identity(container.spec)
        env = {**kubeapi.container_api_env(self.kubelet.store),
               **container_env(container.spec, self.pod, self.lab_pod.address)}  # fmt: skip
        api = self.kubelet.api
        run_dir = kubeapi.service_account_volume(api, self.pod, self.dir / "run") if api else None
        container.log.parent.mkdir(parents=True, exist_ok=True)
        with container.log.open("ab") as log:
            container.proc = subprocess.Popen(
                self.lab_pod.exec_argv(argv, uid=uid, gid=gid, pdeathsig=True, run_dir=run_dir),
                env=self.lab_pod.exec_env(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        container.state = {"running": {"startedAt": now()}}
        container.exit_code = None

    def _identity(self, container: Mapping[str, Any]) -> tuple[int, int]:
        image = images.resolve(str(container.get("image") or ""))
        pod_ctx = self.spec().get("securityContext") or {}
        ctx = container.get("securityContext") or {}
        uid = ctx.get("runAsUser", pod_ctx.get("runAsUser", image.uid))
        gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup", image.gid if uid == image.uid else uid))
        return int(uid), int(gid)

    def _loop(self) -> None:
        restart_policy = self.spec().get("restartPolicy", "Always")
        while not self._stop.wait(POLL_S):
            self._start_ephemeral()
            for container in self.containers.values():
                self._reap(container, restart_policy)
            self._watch_sidecar()
            if self._deadline_passed():
                self._fail_deadline()
                return
            if self._finished():
                return
            self._publish()

    def _reap(self, container: Container, restart_policy: str) -> None:
        proc = container.proc
        if proc is None or container.exit_code is not None or proc.poll() is None:
            return
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        if restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0):
            container.restarts += 1
            self._start(container)
            return
        container.exit_code = code
        container.state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "finishedAt": now(),
            }
        }

    def _watch_sidecar(self) -> None:
        if self.sidecar is None or self.lab_pod is None or self.kubelet.faults.proxy_never_starts:
            return
        if self.lab_pod.envoy.running():
            return
        apps_running = any(c.exit_code is None for c in self.containers.values())
        if self.native and apps_running:
            self.sidecar_restarts += 1
            self.kubelet.lab.restart_sidecar(self.namespace, self.name)
            self.sidecar_state = {"running": {"startedAt": now()}}
        elif "terminated" not in self.sidecar_state:
            self.sidecar_state = {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now()}}

    def _finished(self) -> bool:
        if any(c.exit_code is None for c in self.containers.values()):
            return False
        if self.sidecar is not None and not self.native and "terminated" not in self.sidecar_state:
            return False  # a regular sidecar keeps the pod Running until it exits
        if self.native and self.lab_pod is not None:
            self.lab_pod.envoy.stop()
            self.sidecar_state = {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now()}}
        failed = any(c.exit_code for c in self.containers.values())
        self.phase = "Failed" if failed else "Succeeded"
        self._publish()
        return True

    def _deadline_passed(self) -> bool:
        deadline = self.spec().get("activeDeadlineSeconds")
        return (
            deadline is not None
            and self._started_mono is not None
            and (time.monotonic() - self._started_mono > float(deadline))
        )

    def _fail_deadline(self) -> None:
        self._kill_all()
        self.phase, self.reason = "Failed", "DeadlineExceeded"
        self.message = "Pod was active on the node longer than the specified deadline"
        self._publish()

    def _start_ephemeral(self) -> None:
        for spec in self.spec().get("ephemeralContainers") or []:
            name = str(spec.get("name"))
            if name in self.ephemeral or self.lab_pod is None:
                continue
            container = Container(spec, self.dir / f"{name}.log")
            self.ephemeral[name] = container
            try:
                self._start(container)
            except images.ImagePullError as exc:
                container.state = {"waiting": {"reason": "ErrImagePull", "message": str(exc)}}
        for container in self.ephemeral.values():
            self._reap(container, "Never")

    # ---- status --------------------------------------------------------------------------------

    def _publish(self) -> None:
        status = pod_status(self)
        if status == self._published:
            return
        self._published = status
        with contextlib.suppress(Exception):
            self.kubelet.store.patch_status("pods", self.namespace, self.name, status)

    # ---- teardown ------------------------------------------------------------------------------

    def _kill_all(self) -> None:
        for container in [*self.containers.values(), *self.ephemeral.values()]:
            container.kill()
            if container.exit_code is None and container.proc is not None:
                container.exit_code = 137
                container.state = {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now()}}

    def _teardown(self) -> None:
        self._kill_all()
        if self.lab_pod is not None:
            with contextlib.suppress(Exception):
                self.kubelet.lab.remove_pod(self.namespace, self.name)
        if self._remove:
            current = self.kubelet.store.get("pods", self.namespace, self.name)
            if (
                current is not None
                and (current.get("metadata") or {}).get("uid") == self.uid
                and ((current.get("metadata") or {}).get("deletionTimestamp"))
            ):
                with contextlib.suppress(Exception):
                    self.kubelet.store.remove("pods", self.namespace, self.name)
        self.kubelet.forget(self)
