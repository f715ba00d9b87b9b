"""`meshprobe watch`'s metrics, endpoints, verdicts and notifications without a cluster: scrapes
parsed with the Prometheus client's own parser (docs/watch.md, Metrics)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from diag import errors
from diag.report import TargetResult
from diag.rules.base import Diagnosis, Fix
from diag.watch.metrics import WatchMetrics, known_codes, known_signatures
from diag.watch.notify import Notifier, log_line
from diag.watch.run import parse_listen
from diag.watch.server import serve
from diag.watch.verdict import NO_CODE, Verdict, verdicts_of
from probes.model import Phases, ProbeResult, Protocol, Signature, TargetSpec

OK = Verdict(
    "https://pkg.example.com/", True, "OK", duration=0.05, phases=(("resolve", 0.001), ("connect", 0.01))
)
BLOCKED = Verdict(
    "https://pkg.example.com/", False, "RESET_BEFORE_RESPONSE", "MP0101",
    message="nothing matches", resources=("ServiceEntry shop/pkg",), fix="register it", fix_yaml="kind: X\n",
)  # fmt: skip


def samples(metrics: WatchMetrics) -> list[tuple[str, dict[str, str], float]]:
    text = metrics.scrape().decode()
    families = text_string_to_metric_families(text)
    return [(s.name, dict(s.labels), s.value) for f in families for s in f.samples]


def value(metrics: WatchMetrics, name: str, **labels: str) -> float | None:
    found = [
        v for n, lab, v in samples(metrics) if n == name and all(lab.get(k) == w for k, w in labels.items())
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def new_metrics() -> WatchMetrics:
    return WatchMetrics(version="0.1.0", istio_version="1.24.1")


def test_a_failing_target_carries_its_signature_and_code() -> None:
    m = new_metrics()
    changes = m.record([BLOCKED], now=1000.0)
    assert changes == [(None, BLOCKED)]
    assert value(m, "probe_success", target=BLOCKED.target) == 0
    assert value(m, "meshprobe_probe_verdict", target=BLOCKED.target, signature="RESET_BEFORE_RESPONSE",
                 code="MP0101") == 1  # fmt: skip
    assert value(m, "meshprobe_probe_verdict_change_timestamp_seconds", target=BLOCKED.target) == 1000.0
    assert value(m, "meshprobe_probe_failures_total", target=BLOCKED.target) == 1


def test_a_change_of_verdict_replaces_the_series_and_stamps_the_time() -> None:
    m = new_metrics()
    m.record([OK], now=1000.0)
    assert m.record([OK], now=1010.0) == []  # same verdict: no change, no new timestamp
    assert value(m, "meshprobe_probe_verdict_change_timestamp_seconds", target=OK.target) == 1000.0
    assert m.record([BLOCKED], now=1020.0) == [(OK, BLOCKED)]
    verdict = [(lab, v) for n, lab, v in samples(m) if n == "meshprobe_probe_verdict"]
    assert verdict == [({"target": OK.target, "signature": "RESET_BEFORE_RESPONSE", "code": "MP0101"}, 1.0)]
    assert value(m, "meshprobe_probe_verdict_change_timestamp_seconds", target=OK.target) == 1020.0
    assert m.record([OK], now=1030.0) == [(BLOCKED, OK)]
    assert value(m, "probe_success", target=OK.target) == 1
    assert value(m, "meshprobe_probe_verdict", target=OK.target, signature="OK", code=NO_CODE) == 1


def test_label_values_stay_in_their_closed_sets() -> None:
    m = new_metrics()
    odd = Verdict("tcp://db.example.com:5432", False, "SOMETHING_NEW", "MP9999")
    m.record([odd], now=1.0)
    labels = [lab for n, lab, _ in samples(m) if n == "meshprobe_probe_verdict"]
    assert labels == [{"target": odd.target, "signature": "PROBE_ERROR", "code": NO_CODE}]
    assert "MP0101" in known_codes() and NO_CODE in known_codes()
    assert known_signatures() == {s.value for s in Signature}


def test_phase_histograms_and_probe_duration() -> None:
    m = new_metrics()
    m.record([OK], now=1.0)
    m.record([OK], now=2.0)
    assert value(m, "probe_duration_seconds", target=OK.target) == 0.05
    assert value(m, "meshprobe_probe_phase_duration_seconds_count", target=OK.target, phase="connect") == 2
    assert value(m, "meshprobe_probe_phase_duration_seconds_bucket", target=OK.target, phase="connect",
                 le="0.01") == 2  # fmt: skip
    assert value(m, "meshprobe_probe_phase_duration_seconds_count", target=OK.target, phase="tls") is None


def test_forgotten_targets_leave_no_series() -> None:
    m = new_metrics()
    m.record([BLOCKED], now=1.0)
    m.forget([BLOCKED.target])
    assert not [s for s in samples(m) if s[1].get("target") == BLOCKED.target]


def test_build_info_names_both_versions() -> None:
    m = new_metrics()
    assert value(m, "meshprobe_build_info", version="0.1.0", istio_version="1.24.1") == 1
    m.set_istio_version(None)
    assert [lab for n, lab, _ in samples(m) if n == "meshprobe_build_info"] == [
        {"version": "0.1.0", "istio_version": "unknown"}
    ]


def test_names_follow_prometheus_conventions() -> None:
    """Counters end in _total, durations are in seconds, timestamps say so, no _created series."""
    m = new_metrics()
    m.record([OK], now=1.0)
    m.cycles.inc()
    families = list(text_string_to_metric_families(m.scrape().decode()))
    for family in families:
        assert family.name.startswith(("probe_", "meshprobe_")), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        if "duration" in family.name:
            assert family.name.endswith("_seconds"), family.name
        assert not family.name.endswith("_created")
    names = {f.name for f in families}
    assert {"probe_success", "probe_duration_seconds"} <= names


def diagnosis(code: str) -> Diagnosis:
    resources = ("ServiceEntry shop/b", "ServiceEntry shop/a")
    return Diagnosis(code, "Name", "error", f"{code} message", resources=resources,
                     fix=Fix("register it", "kind: ServiceEntry\n"))  # fmt: skip


def row(outcome: str, signature: Signature, codes: tuple[str, ...]) -> TargetResult:
    spec = TargetSpec("https://pkg.example.com/", Protocol.HTTPS, "pkg.example.com", 443)
    observed = ProbeResult(spec, signature, phases=Phases(resolve=0.001, connect=0.002), elapsed=0.01)
    return TargetResult(spec.raw, spec.host, 443, "https", outcome=outcome, observed=observed,
                        diagnoses=tuple(diagnosis(c) for c in codes))  # fmt: skip


class _Report:
    def __init__(self, *rows: TargetResult) -> None:
        self.targets = rows


def test_the_primary_code_is_the_first_diagnosis_of_a_failing_target() -> None:
    failing, passing = verdicts_of(_Report(
        row("fail", Signature.RESET_BEFORE_RESPONSE, ("MP0101", "MP0120")),
        row("pass", Signature.OK, ("MP0120",)),
    ))  # fmt: skip
    assert (failing.passed, failing.signature, failing.code) == (False, "RESET_BEFORE_RESPONSE", "MP0101")
    assert failing.resources == ("ServiceEntry shop/a", "ServiceEntry shop/b")
    assert failing.fix == "register it" and failing.fix_yaml.startswith("kind:")
    assert failing.phases == (("resolve", 0.001), ("connect", 0.002))
    assert (passing.passed, passing.code) == (True, NO_CODE)  # a warning on a passing target is no verdict


class _EventSink:
    def __init__(self, fail: errors.MeshprobeError | None = None) -> None:
        self.posted: list[dict[str, Any]] = []
        self.fail = fail

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        self.posted.append({"method": method, "path": path, **kwargs})
        return {}


def test_a_verdict_change_logs_one_json_line_and_posts_an_event() -> None:
    out = io.StringIO()
    sink = _EventSink()
    notifier = Notifier(sink, ("monitoring", "watch-abc"), out)  # type: ignore[arg-type]
    notifier.changed(OK, BLOCKED, 1_700_000_000.0)
    line = json.loads(out.getvalue())
    assert line["msg"] == "verdict changed" and line["code"] == "MP0101"
    assert line["from"] == "pass OK none" and line["to"] == "fail RESET_BEFORE_RESPONSE MP0101"
    assert line["resources"] == ["ServiceEntry shop/pkg"] and line["fix_yaml"] == "kind: X\n"
    assert line["time"] == "2023-11-14T22:13:20Z"
    (post,) = sink.posted
    event = post["body"]
    assert post["path"] == "/api/v1/namespaces/monitoring/events"
    assert event["reason"] == "EgressFailedMP0101" and event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "watch-abc" and "register it" in event["message"]


def test_events_stop_after_rbac_refuses_one() -> None:
    out = io.StringIO()
    sink = _EventSink(errors.PermissionDenied("permission denied: cannot create events"))
    notifier = Notifier(sink, ("monitoring", "watch-abc"), out)  # type: ignore[arg-type]
    notifier.changed(None, BLOCKED, 1.0)
    notifier.changed(BLOCKED, OK, 2.0)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["msg"] for x in lines] == [
        "verdict changed", "Events off: creating them is forbidden", "verdict changed"
    ]
    assert notifier.events is False


def test_log_line_of_a_first_passing_verdict() -> None:
    assert log_line(None, OK, 0.0) == {
        "time": "1970-01-01T00:00:00Z", "msg": "verdict changed", "target": OK.target, "from": None,
        "to": "pass OK none", "success": True, "signature": "OK", "code": "none",
    }  # fmt: skip


class _Watched:
    def __init__(self) -> None:
        import threading

        self.ready = threading.Event()
        self.alive = True

    def healthy(self) -> bool:
        return self.alive


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_endpoints() -> None:
    m = new_metrics()
    m.record([BLOCKED], now=1.0)
    watched = _Watched()
    server = serve(("127.0.0.1", 0), watched, m)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert _get(f"{base}/readyz")[0] == 503
        watched.ready.set()
        assert _get(f"{base}/readyz")[0] == 200
        assert _get(f"{base}/healthz")[0] == 200
        watched.alive = False
        assert _get(f"{base}/healthz")[0] == 503
        status, content_type, body = _get(f"{base}/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=")
        assert any(f.name == "meshprobe_probe_verdict" for f in text_string_to_metric_families(body))
        assert _get(f"{base}/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("text", "address"), [(":9146", ("0.0.0.0", 9146)), ("9146", ("0.0.0.0", 9146)),
                                                ("127.0.0.1:80", ("127.0.0.1", 80)),
                                                ("[::]:9146", ("::", 9146))])  # fmt: skip
def test_listen_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["host:port", ":70000", ""])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(errors.UsageError):
        parse_listen(text)
