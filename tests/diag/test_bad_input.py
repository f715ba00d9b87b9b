"""Bad input never passes as green, and every error reads the same way: `error: FILE:LINE:COL:
OBJECT: what is wrong` (plus a hint), exit 2, never a Python exception's name or PyYAML's context.
YAML means what it means to kubectl (go-yaml v2 scalars, colons inside flow sequences)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag import cli
from diag.model import kubeyaml
from diag.model.loader import load_text

SE = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  resolution: DNS
"""
PYTHON_WORDS = re.compile(
    r"codec can't|Error\b|Exception|Traceback|while parsing|while scanning|\(str\)|\(dict\)|\(list\)"
)
WHERE = re.compile(r"^error: (?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): ")


def explain(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["explain", "api.example.com", "-n", "shop", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_an_empty_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain(capsys, "--config", str(tmp_path), "--mode", "ALLOW_ANY")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {tmp_path}: no .yaml, .yml or .json files in this directory")


def test_files_without_any_object_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing here\n---\n")
    code, _, err = explain(capsys, "--config", str(tmp_path / "empty.yaml"), "--mode", "ALLOW_ANY")
    assert code == 2 and "no objects" in err.splitlines()[0]


def test_an_empty_file_beside_others_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(SE)
    (tmp_path / "b.yaml").write_text("")
    code, _, err = explain(capsys, "--config", str(tmp_path), "--mode", "REGISTRY_ONLY")
    assert code == 0
    assert err == f"warning: {tmp_path / 'b.yaml'}: no objects in this file\n"


def test_a_mesh_config_given_as_objects_says_where_it_belongs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")
    code, _, err = explain(capsys, "--config", str(mesh))
    assert code == 2
    first, hint = err.splitlines()
    assert (
        first == f"error: {mesh}:1:1: document 1: not a Kubernetes object: apiVersion not set, kind not set"
    )
    assert "--mesh-config" in hint


def test_an_unknown_kind_in_an_istio_group_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(SE + "---\n" + SE.replace("kind: ServiceEntry", "kind: ServiceEntyr"))
    code, out, err = explain(capsys, "--config", str(path), "--mode", "ALLOW_ANY")
    assert (code, out) == (2, "")
    first = err.splitlines()[0]
    assert first.startswith(f"error: {path}:10:1: ServiceEntyr shop/api: ")
    assert 'no matches for kind "ServiceEntyr" in version "networking.istio.io/v1"' in first
    assert 'did you mean "ServiceEntry"?' in first


def test_other_groups_and_served_versions_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.yaml"
    other = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {anything: 1}\n"
    path.write_text(SE.replace("networking.istio.io/v1", "networking.istio.io/v1alpha3") + "---\n" + other)
    code, _, err = explain(capsys, "--config", str(path), "--mode", "REGISTRY_ONLY")
    assert (code, err) == (0, "")
    path.write_text(SE.replace("networking.istio.io/v1", "networking.istio.io/v2"))
    code, _, err = explain(capsys, "--config", str(path), "--mode", "REGISTRY_ONLY")
    assert code == 2 and "served versions: v1, v1alpha3, v1beta1" in err


def test_an_unknown_field_is_a_warning_like_kubectls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "se.yaml"
    path.write_text(SE.replace("  ports:\n", "  prots:\n").replace("name: https,", "nmae: https,"))
    code, out, err = explain(capsys, "--config", str(path), "--mode", "REGISTRY_ONLY")
    assert err.splitlines() == [f'warning: {path}:6:3: ServiceEntry shop/api: unknown field "spec.prots"']
    assert (
        code == 1 and "MP0102" in out
    )  # the entry has no ports: the field was ignored, as the server drops it
    path.write_text(SE.replace("name: https,", "nmae: https,"))
    _, _, err = explain(capsys, "--config", str(path), "--mode", "REGISTRY_ONLY")
    assert err.splitlines() == [
        f'warning: {path}:7:19: ServiceEntry shop/api: unknown field "spec.ports[0].nmae"'
    ]


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        (b"\xff\xfe\x00\x01binary", "1:3", "not a text file (a NUL byte): not YAML or JSON"),
        (b"kind: Caf\xe9\n", "1:10", "not UTF-8 text: YAML and JSON files must be UTF-8"),
        (b"just some words\n", "1:1", "document 1: not a Kubernetes object: the document is a string"),
        (b"a: {b: [1, 2}\n", "1:13", "document 1: not valid YAML: "),
        (SE.encode() + b"---\nspec: [unclosed\n", "10:1", "document 2: not valid YAML: "),
        (b"- 1\n- 2\n", "1:1", "document 1: not a Kubernetes object: the document is a list"),
    ],
)
def test_a_file_that_is_not_yaml_objects_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, where: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, out, err = explain(capsys, "--config", str(path), "--mode", "ALLOW_ANY")
    assert (code, out) == (2, "")
    first = err.splitlines()[0]
    assert first.startswith(f"error: {path}:{where}: {message}"), first
    assert not PYTHON_WORDS.search(err), err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, ": cannot read the mesh config: no such file or directory"),
        (b"\xe9\n", ":1:1: not UTF-8 text"),
        (b"a: {b\n", ":2:1: the mesh config is not valid YAML: "),
        (b"- 1\n", ": the mesh config must be a mapping, not a list"),
        (SE.encode(), ": a ServiceEntry object is not a mesh config"),
    ],
)
def test_mesh_config_errors_read_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    (tmp_path / "se.yaml").write_text(SE)
    mesh = tmp_path / "mesh.yaml"
    if content is not None:
        mesh.write_bytes(content)
    code, _, err = explain(capsys, "--config", str(tmp_path / "se.yaml"), "--mesh-config", str(mesh))
    assert code == 2
    assert err.splitlines()[0].startswith(f"error: {mesh}{message}"), err
    assert not PYTHON_WORDS.search(err), err


def test_yaml_loads_as_kubectl_reads_it() -> None:
    loaded = load_text(
        SE.replace(
            "  resolution: DNS",
            "  resolution: STATIC\n  addresses: [1.2.3.4, 001:db8::]\n  endpoints: [{address: 1.2.3.4}]",
        )
    )
    assert [p for p in loaded.problems if p.level == "error"] == []
    (entry,) = loaded.objects
    assert entry.addresses == ("1.2.3.4", "001:db8::")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("10:20", "10:20"),  # PyYAML: 620 (base 60)
        ("2024-01-01", "2024-01-01"),  # PyYAML: a date
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("1e3", 1000.0),  # PyYAML: a string
        ("0o17", 15),  # PyYAML: a string
        ("017", 15),
        ("0x1F", 31),
        ("1_000", 1000),
        ("y", True),  # PyYAML: a string
        ("off", False),
        ("~", None),
        ("=", "="),  # PyYAML: an error
        ("1e400", "1e400"),  # out of range: Go's ParseFloat fails, so a string
        ("[2001:db8::1, 10:20]", ["2001:db8::1", "10:20"]),
        ("[1.2.3.4, 001:db8::]", ["1.2.3.4", "001:db8::"]),  # libyaml: an error; PyYAML: a mapping
        ("{1: a, true: b}", {"1": "a", "true": "b"}),  # JSON keys are strings
        ("!custom value", "value"),
    ],
)
def test_scalars_resolve_as_go_yaml_does(scalar: str, value: object) -> None:
    assert kubeyaml.load(f"x: {scalar}\n") == {"x": value}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{},?#&*!|>'\"% \n\t.0123456789yn~")), max_size=80))
def test_any_text_loads_or_gives_a_located_problem(text: str) -> None:
    result = load_text(text, origin="fuzz.yaml")
    for problem in result.problems:
        assert not PYTHON_WORDS.search(problem.message), problem


def test_a_namespace_that_is_not_a_dns_label_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "se.yaml").write_text(SE)
    code = cli.main(["explain", "api.example.com", "-n", "Shop_1", "--config", str(tmp_path / "se.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --namespace 'Shop_1': not a valid namespace name")
    assert cli.main(["lab", "exec", "-n", "-x-", "--", "true"]) == 2


def test_probe_with_a_missing_ca_file_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["probe", "--ca-file", "/nonexistent/ca.pem", "https://127.0.0.1:1/"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[0] == "error: --ca-file /nonexistent/ca.pem: no such file"


def test_lab_input_errors_exit_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["lab", "up", "--internet", ":::"]) == 2
    assert capsys.readouterr().err.startswith("error: --internet ':::': not a host name")
    bad = tmp_path / "port.yaml"
    bad.write_text(SE.replace("number: 443", "number: 99999"))
    for argv in (["lab", "up", "--config", str(bad)], ["lab", "apply", str(bad)]):
        assert cli.main(argv) == 2
        first = capsys.readouterr().err.splitlines()[0]
        assert (
            first
            == f"error: {bad}:7:5: ServiceEntry shop/api: port number 99999 must be in the range 1..65535"
        )


def _swallowed_interrupt(result: object) -> object:
    """What a library that catches KeyboardInterrupt does: the Ctrl-C is lost, the work 'succeeds'."""

    def operation(*args: object, **kwargs: object) -> object:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs before the next statement
            time.sleep(0.01)
        except KeyboardInterrupt:
            pass
        return result

    return operation


@pytest.mark.parametrize("command", ["down", "apply"])
def test_an_interrupted_lab_down_or_apply_never_prints_success(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab import control

    monkeypatch.setattr(control, "down", _swallowed_interrupt("abc123"))
    monkeypatch.setattr(control, "request", _swallowed_interrupt({"ok": True, "seconds": 0.1}))
    (tmp_path / "se.yaml").write_text(SE)
    argv = ["lab", "down"] if command == "down" else ["lab", "apply", str(tmp_path / "se.yaml")]
    assert cli.main(argv) == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: interrupted\n")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: --results {path}: cannot read: no such file or directory"),
        (b"{bad", "error: {path}:1:2: not JSON: "),
        (b"\xe9", "error: {path}: not UTF-8 text"),
        (b'{"results": [{"x": 1}]}', "error: {path}: not a `python -m probes` JSON result: a field"),
    ],
)
def test_results_file_errors_read_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    (tmp_path / "se.yaml").write_text(SE)
    path = tmp_path / "results.json"
    if content is not None:
        path.write_bytes(content)
    code, _, err = explain(capsys, "--config", str(tmp_path / "se.yaml"), "--results", str(path))
    assert code == 2 and err.startswith(message.format(path=path)), err
    assert not PYTHON_WORDS.search(err) and "Errno" not in err
