"""Harness for the end-to-end lab scenarios (``test_scenarios_*.py``): cases seen by curl **and** by a
Python client (httpx, or sockets for raw TCP) from a lab pod, with the pod's Envoy access log as the
oracle naming the cluster or route that handled each request.

A scenario is one ``lab.Lab`` (one Envoy config) and many :class:`Case` rows. The Python client is a
single long-lived process inside the pod (JSON lines in/out) so a case costs milliseconds.
Outcome classes follow docs/signatures.md: ``reset`` is the one class for ECONNRESET / TLS EOF / empty reply.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lab.istiod import PodView, generate

# ---- the in-pod Python client ----------------------------------------------------------------

PY_CLIENT = r"""
import json, os, socket, ssl, sys
import httpx

CA = os.environ.get("SSL_CERT_FILE")

def klass(exc):
    chain, e = [], exc
    while e is not None and len(chain) < 6:
        chain.append(type(e).__name__ + ":" + str(e)[:120])
        e = e.__cause__ or e.__context__
    text = " | ".join(chain).lower()
    if any(k in text for k in ("name or service not known", "no address associated", "failure in name")):
        return "nxdomain", chain
    if "wrong version number" in text or "wrong_version_number" in text:
        return "tls-wrong-version", chain
    if "timed out" in text or "timeout" in text:
        return "timeout", chain
    if any(k in text for k in ("reset", "eof", "disconnected without", "broken pipe", "connection aborted")):
        return "reset", chain
    if "refused" in text:
        return "refused", chain
    return "error", chain

def do_http(req):
    kw = {"timeout": req.get("timeout", 5.0), "verify": CA}
    try:
        with httpx.Client(**kw) as client:
            r = client.request("GET", req["url"], headers=req.get("headers") or {})
            return {"outcome": "status:%d" % r.status_code, "headers": dict(r.headers), "body": r.text[:600]}
    except Exception as exc:
        out, chain = klass(exc)
        return {"outcome": out, "error": chain}

def do_tcp(req):
    s = socket.socket()
    s.settimeout(req.get("timeout", 2.0))
    try:
        s.connect((req["host"], req["port"]))
        if req.get("send"):
            s.sendall(req["send"].encode())
        data = s.recv(4096)
        return {"outcome": "banner" if data else "closed", "data": data.decode("latin-1")}
    except Exception as exc:
        out, chain = klass(exc)
        return {"outcome": out, "error": chain}
    finally:
        s.close()

def do_tls(req):
    ctx = ssl.create_default_context(cafile=CA)
    sni = req.get("sni")
    if not sni:
        ctx.check_hostname = False
    s = socket.create_connection((req["host"], req["port"]), timeout=req.get("timeout", 3.0))
    try:
        t = ctx.wrap_socket(s, server_hostname=sni or None)
        t.close()
        return {"outcome": "handshake"}
    except Exception as exc:
        out, chain = klass(exc)
        return {"outcome": out, "error": chain}
    finally:
        s.close()

def do_dns(req):
    import dns.message, dns.query, dns.rdatatype
    query = dns.message.make_query(req["sni"], dns.rdatatype.A)
    try:
        if req.get("send") == "udp":
            answer = dns.query.udp(query, req["host"], port=req["port"], timeout=req.get("timeout", 2.0))
        else:
            answer = dns.query.tcp(query, req["host"], port=req["port"], timeout=req.get("timeout", 2.0))
        ips = [r.address for rrset in answer.answer for r in rrset if hasattr(r, "address")]
        return {"outcome": "answer", "data": " ".join(ips)}
    except Exception as exc:
        out, chain = klass(exc)
        return {"outcome": out, "error": chain}

for line in sys.stdin:
    req = json.loads(line)
    fn = {"http": do_http, "tcp": do_tcp, "tls": do_tls, "dns": do_dns}[req["kind"]]
    print(json.dumps(fn(req)), flush=True)
"""


class PyClient:
    """The long-lived Python client process inside a pod."""

    def __init__(self, pod: Any) -> None:
        argv = pod.exec_argv([sys.executable, "-u", "-c", PY_CLIENT])
        self.proc = subprocess.Popen(
            argv,
            env=pod.exec_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"python client died: {err[-800:]}")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogExpect:
    """What the access-log entry of a request must say (None = not checked)."""

    cluster: str | None = None
    route: str | None = None
    flags: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Case:
    """One request, made by curl and by the Python client. ``kind``: http (URL; http or https),
    tcp (host, port; read a banner after sending ``send``), tls (handshake only, ``sni`` or none),
    dns (Python only: an A query for ``sni`` to ``host:port`` over TCP, or UDP with ``send="udp"``)."""

    name: str
    kind: str
    expect: str  # outcome class: status:NNN, reset, banner, closed, timeout, nxdomain, handshake
    url: str = ""
    host: str = ""
    port: int = 0
    sni: str = ""
    send: str = ""
    log: LogExpect | None = None
    body_has: str = ""  # substring of the body (http) or banner (tcp)
    curl_extra: tuple[str, ...] = ()
    py_headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    curl: bool = True
    python: bool = True
    took: tuple[float, float] | None = None  # (min, max) seconds the client took


def curl_argv(case: Case) -> list[str]:
    t = str(case.timeout)
    if case.kind == "http":
        return ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", t, *case.curl_extra, case.url]
    if case.kind == "tcp":
        return ["curl", "-sS", "--max-time", t, *case.curl_extra, f"telnet://{case.host}:{case.port}"]
    target = case.sni or case.host
    resolve = ["-k"]
    if case.sni and case.sni != case.host:
        resolve = ["--resolve", f"{case.sni}:{case.port}:{case.host}"]
    elif case.sni:
        resolve = []
    return ["curl", "-sS", "-o", "/dev/null", "--max-time", t, *resolve, f"https://{target}:{case.port}/"]


def classify_curl(case: Case, done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(outcome class, body/banner) from curl's exit code and output."""
    rc, out = done.returncode, done.stdout
    if case.kind == "http":
        if rc == 0:
            body, _, code = out.rpartition("\n")
            return f"status:{code}", body
    elif case.kind == "tcp":
        if rc == 28:
            return ("banner", out) if out else ("timeout", out)
        if rc == 0:
            return ("banner", out) if out else ("closed", out)
    elif rc == 0:
        return "handshake", ""
    if rc == 35 and "wrong version number" in done.stderr:
        return "tls-wrong-version", done.stderr
    table = {6: "nxdomain", 7: "refused", 28: "timeout", 35: "reset", 52: "reset", 56: "reset"}
    return table.get(rc, f"curl-rc-{rc}"), done.stderr


def outcome_matches(expected: str, actual: str) -> bool:
    """``closed`` and ``reset`` are one class for raw TCP (a blackhole's FIN vs RST is a race);
    ``a|b`` accepts either outcome."""
    if "|" in expected:
        return any(outcome_matches(option, actual) for option in expected.split("|"))
    if expected == actual:
        return True
    return {expected, actual} <= {"closed", "reset"}


# ---- running a scenario -----------------------------------------------------------------------


@dataclass
class Observed:
    case: str
    client: str
    outcome: str
    detail: str
    log: list[dict[str, Any]]
    elapsed: float = 0.0


def _new_log_entries(pod: Any, before: int, want: bool, wait_s: float = 2.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + (wait_s if want else 0.15)
    while True:
        entries = pod.access_log()[before:]
        if (entries and want) or time.monotonic() > deadline:
            return list(entries)
        time.sleep(0.03)


def run_case(pod: Any, client: PyClient, case: Case) -> list[Observed]:
    out = []
    if case.curl:
        before = len(pod.access_log())
        started = time.monotonic()
        done = pod.exec(curl_argv(case), timeout=case.timeout + 10)
        elapsed = time.monotonic() - started
        outcome, detail = classify_curl(case, done)
        logged = _new_log_entries(pod, before, case.log is not None)
        out.append(Observed(case.name, "curl", outcome, detail, logged, elapsed))
    if case.python:
        before = len(pod.access_log())
        request: dict[str, Any] = {"kind": case.kind, "timeout": case.timeout}
        if case.kind == "http":
            request.update(url=case.url, headers=dict(case.py_headers))
        else:
            request.update(host=case.host, port=case.port, sni=case.sni, send=case.send)
        started = time.monotonic()
        answer = client.ask(request)
        elapsed = time.monotonic() - started
        detail = str(answer.get("body") or answer.get("data") or answer.get("error") or "")
        logged = _new_log_entries(pod, before, case.log is not None)
        out.append(Observed(case.name, "python", str(answer["outcome"]), detail, logged, elapsed))
    return out


def check(case: Case, seen: Observed) -> list[str]:
    """Mismatches between a case's expectations and one observation (empty when it passed)."""
    problems = []
    where = f"{case.name} [{seen.client}]"
    if not outcome_matches(case.expect, seen.outcome):
        problems.append(f"{where}: expected {case.expect}, got {seen.outcome} ({seen.detail[:200]!r})")
    if case.took is not None and not case.took[0] <= seen.elapsed <= case.took[1]:
        problems.append(f"{where}: took {seen.elapsed:.2f} s, expected {case.took[0]}-{case.took[1]} s")
    if case.body_has and case.body_has not in seen.detail:
        problems.append(f"{where}: {case.body_has!r} not in {seen.detail[:200]!r}")
    if case.log is not None:
        if not seen.log:
            problems.append(f"{where}: no access-log entry")
        else:
            entry = seen.log[-1]
            for key, want in (
                ("upstream_cluster", case.log.cluster),
                ("route_name", case.log.route),
                ("response_flags", case.log.flags),
                ("response_code", case.log.code),
            ):
                got = entry.get(key)
                if want is not None and str(got) != want:
                    problems.append(f"{where}: log {key}={got!r}, expected {want!r}")
    return problems


@contextmanager
def python_client(pod: Any) -> Iterator[PyClient]:
    client = PyClient(pod)
    try:
        yield client
    finally:
        client.close()


def run_cases(pod: Any, cases: Sequence[Case]) -> list[str]:
    """Run every case with both clients; return all mismatches (the test asserts the list is empty)."""
    problems: list[str] = []
    with python_client(pod) as client:
        for case in cases:
            for seen in run_case(pod, client, case):
                problems.extend(check(case, seen))
    return problems


def config_source(
    connect_timeout_s: float | None = None, http10: bool = False, lab_ref: list[Any] | None = None
) -> Any:
    """A ``lab.Lab`` config source calling ``lab.istiod.generate`` with test-only PodView knobs: a
    shortened connect timeout, PILOT_HTTP10, and the lab CA as the agent's "system" roots."""

    def source(
        objects: Sequence[Mapping[str, Any]], spec: Any, mesh: Mapping[str, Any], mode: str | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, tuple[str, ...]]]:
        ca = str(lab_ref[0].ca_file) if lab_ref else None
        view = PodView(
            namespace=spec.namespace,
            labels=dict(spec.labels),
            dns_capture=spec.dns_capture,
            mesh=dict(mesh),
            mode_override=mode,
            http10=http10,
            connect_timeout_s=connect_timeout_s,
            ca_file=ca,
        )
        generated = generate(objects, view)
        return generated.listeners, generated.clusters, dict(generated.dns)

    return source


# ---- self-tests of the harness (no lab needed) ------------------------------------------------


def _done(rc: int, out: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["curl"], rc, out, "err")


def test_classify_curl_table() -> None:
    http = Case("h", "http", "status:200", url="http://x/")
    tcp = Case("t", "tcp", "banner", host="x", port=22)
    assert classify_curl(http, _done(0, '{"a":1}\n502')) == ("status:502", '{"a":1}')
    assert classify_curl(http, _done(56, ""))[0] == "reset"
    assert classify_curl(http, _done(52, ""))[0] == "reset"
    assert classify_curl(http, _done(6, ""))[0] == "nxdomain"
    assert classify_curl(tcp, _done(28, "SSH-2.0-x"))[0] == "banner"
    assert classify_curl(tcp, _done(0, ""))[0] == "closed"
    assert classify_curl(tcp, _done(28, ""))[0] == "timeout"


def test_outcome_classes() -> None:
    assert outcome_matches("reset", "closed")
    assert not outcome_matches("reset", "status:502")
    assert not outcome_matches("banner", "closed")
    assert outcome_matches("timeout|tls-wrong-version", "tls-wrong-version")
    assert not outcome_matches("timeout|reset", "status:200")


def test_check_reports_log_mismatch() -> None:
    case = Case("c", "http", "status:200", url="http://x/", log=LogExpect(cluster="outbound|80||x"))
    seen = Observed("c", "curl", "status:200", "", [{"upstream_cluster": "BlackHoleCluster"}])
    assert check(case, seen) == [
        "c [curl]: log upstream_cluster='BlackHoleCluster', expected 'outbound|80||x'"
    ]
    assert (
        check(case, Observed("c", "curl", "status:200", "", [{"upstream_cluster": "outbound|80||x"}])) == []
    )
