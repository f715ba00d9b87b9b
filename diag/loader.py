"""Read mesh objects from files: multi-document YAML, `kind: List`, `kubectl get -o yaml|json`, dirs.

`load_paths(paths)` never raises for bad input: each unreadable file, bad YAML document or
malformed object becomes a `Problem` naming the file (and document/object), and everything else is
still loaded. `load_documents(docs, origin)` does the same for already-parsed mappings (the live
cluster reader hands API objects here). `load_mesh_config(path)` reads a MeshConfig YAML (the
`mesh` key of the istio ConfigMap, or the ConfigMap itself) and raises `InputError` on bad input
(it is a CLI flag, exit 2).

Served API versions: networking.istio.io v1, v1beta1, v1alpha3 (and extensions.istio.io for
WasmPlugin); core v1 Service/Namespace/Pod/ConfigMap; apps/v1 Deployment (istiod version only).
Unknown kinds are skipped and counted, not errors. A ConfigMap named `istio` or `istio-<rev>`
with a `mesh` key becomes `LoadResult.mesh`. JSON files (what `kubectl get -o json` and the API
give) are parsed with the json module, which is much faster than YAML for large inputs.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from diag.errors import InputError
from diag.model_mesh import parse_mesh_config
from diag.model_parse import ParseError, parse_object
from diag.resources import MeshConfig, Resource

YAML_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 256 * 1024 * 1024

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "LoadResult",
    "Problem",
    "load_documents",
    "load_mesh_config",
    "load_paths",
    "load_text",
    "parse_mesh_config",
]


@dataclass(frozen=True, kw_only=True)
class Problem:
    """Something that could not be loaded: names the file and, when known, the object."""

    path: str
    message: str
    object: str = ""  # "ServiceEntry ns/name" or "document 3"
    level: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}: {self.object}" if self.object else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """Loaded objects (in input order), problems, and a MeshConfig if a ConfigMap carried one."""

    objects: tuple[Resource, ...] = ()
    problems: tuple[Problem, ...] = ()
    mesh: MeshConfig | None = None
    skipped: Mapping[str, int] | None = None  # unknown kinds → count


class _Collector:
    def __init__(self) -> None:
        self.objects: list[Resource] = []
        self.problems: list[Problem] = []
        self.mesh: MeshConfig | None = None
        self.skipped: Counter[str] = Counter()

    def result(self) -> LoadResult:
        return LoadResult(
            objects=tuple(self.objects),
            problems=tuple(self.problems),
            mesh=self.mesh,
            skipped=dict(self.skipped),
        )

    def add_document(self, doc: Any, path: str, label: str) -> None:
        if doc is None:
            return
        if not isinstance(doc, Mapping):
            self.problems.append(
                Problem(path=path, object=label, message=f"not an object ({type(doc).__name__})")
            )
            return
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
            for i, item in enumerate(doc["items"]):
                self.add_document(item, path, f"{label} item {i}")
            return
        self._add_object(doc, path, label)

    def _add_object(self, doc: Mapping[str, Any], path: str, label: str) -> None:
        name = _describe(doc, label)
        if doc.get("kind") == "ConfigMap":
            self._maybe_mesh(doc, path, name)
            return
        try:
            obj = parse_object(doc, f"{path}#{label}")
        except ParseError as exc:
            self.problems.append(Problem(path=path, object=name, message=str(exc)))
            return
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
            self.problems.append(
                Problem(path=path, object=name, message=f"malformed ({exc.__class__.__name__})")
            )
            return
        if obj is None:
            self.skipped[str(doc.get("kind"))] += 1
        else:
            self.objects.append(obj)

    def _maybe_mesh(self, doc: Mapping[str, Any], path: str, name: str) -> None:
        meta = doc.get("metadata")
        data = doc.get("data")
        meta = meta if isinstance(meta, Mapping) else {}
        data = data if isinstance(data, Mapping) else {}
        cm_name = str(meta.get("name", ""))
        if not (cm_name == "istio" or cm_name.startswith("istio-")) or "mesh" not in data:
            self.skipped["ConfigMap"] += 1
            return
        ns = str(meta.get("namespace", ""))
        try:
            self.mesh = _mesh_from_text(data["mesh"], f"ConfigMap {ns}/{cm_name}")
        except InputError as exc:
            self.problems.append(Problem(path=path, object=name, message=exc.message))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    The objects built here form no reference cycles; without the pause, generation-2 collections
    rescan the growing heap over and over and loading 50k entries costs twice as much.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_paths(paths: Sequence[str | Path]) -> LoadResult:
    """Load every YAML/JSON file under `paths` (files or directories, sorted, recursive)."""
    out = _Collector()
    with paused_gc():
        for path in _expand(paths, out):
            text = _read(path, out)
            if text is not None:
                _load_into(out, text, str(path))
    return out.result()


def load_text(text: str, origin: str = "<input>") -> LoadResult:
    """Load a YAML (or JSON) string, multi-document."""
    out = _Collector()
    with paused_gc():
        _load_into(out, text, origin)
    return out.result()


def load_documents(docs: Iterable[Any], origin: str = "<input>") -> LoadResult:
    """Load already-parsed documents (mappings; `kind: List` expanded)."""
    out = _Collector()
    with paused_gc():
        for i, doc in enumerate(docs):
            out.add_document(doc, origin, f"document {i + 1}")
    return out.result()


def load_mesh_config(path: str | Path) -> MeshConfig:
    """Read a MeshConfig file (the `mesh` YAML, or the ConfigMap holding it). Raises `InputError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read mesh config ({exc.__class__.__name__})") from None
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: mesh config is not valid YAML ({_yaml_where(exc)})") from None
    if doc is None:
        return MeshConfig(ref=f"MeshConfig {p.name}")
    if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap":
        data = doc.get("data")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
        if not isinstance(data, Mapping) or "mesh" not in data:
            raise InputError(f"{p}: ConfigMap has no data.mesh key")
        ref = (
            f"ConfigMap {meta.get('namespace', '')}/{meta.get('name', '')}"
            if isinstance(meta, Mapping)
            else p.name
        )
        return _mesh_from_text(data["mesh"], ref)
    if not isinstance(doc, Mapping):
        raise InputError(f"{p}: mesh config must be a mapping")
    if "mesh" in doc and isinstance(doc["mesh"], str):
        return _mesh_from_text(doc["mesh"], f"MeshConfig {p.name}")
    return _checked_mesh(doc, f"MeshConfig {p.name}")


def _mesh_from_text(text: Any, ref: str) -> MeshConfig:
    if not isinstance(text, str):
        raise InputError(f"{ref}: data.mesh must be a YAML string")
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InputError(f"{ref}: data.mesh is not valid YAML ({_yaml_where(exc)})") from None
    if doc is None:
        return MeshConfig(ref=ref)
    if not isinstance(doc, Mapping):
        raise InputError(f"{ref}: data.mesh must be a mapping")
    return _checked_mesh(doc, ref)


def _checked_mesh(doc: Mapping[str, Any], ref: str) -> MeshConfig:
    try:
        return parse_mesh_config(doc, ref)
    except ParseError as exc:
        raise InputError(f"{ref}: {exc}") from None


def _expand(paths: Sequence[str | Path], out: _Collector) -> Iterator[Path]:
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            try:
                files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in YAML_SUFFIXES)
            except OSError as exc:
                out.problems.append(
                    Problem(path=str(p), message=f"cannot list directory ({exc.__class__.__name__})")
                )
                continue
            yield from files
        elif p.exists():
            yield p
        else:
            out.problems.append(Problem(path=str(p), message="no such file or directory"))


def _read(path: Path, out: _Collector) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            out.problems.append(Problem(path=str(path), message="file too large"))
            return None
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        out.problems.append(Problem(path=str(path), message="not UTF-8 text"))
    except OSError as exc:
        out.problems.append(
            Problem(path=str(path), message=f"cannot read ({exc.strerror or exc.__class__.__name__})")
        )
    return None


def _load_into(out: _Collector, text: str, path: str) -> None:
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            pass  # not strict JSON: YAML flow style, parsed below
        else:
            docs = doc if isinstance(doc, list) else [doc]
            for i, item in enumerate(docs):
                out.add_document(item, path, f"document {i + 1}")
            return
    for index, doc in _yaml_documents(text, path, out):
        out.add_document(doc, path, f"document {index}")


def _yaml_documents(text: str, path: str, out: _Collector) -> Iterator[tuple[int, Any]]:
    """Parse document by document so one bad document does not lose the others."""
    chunks = _split_documents(text)
    for index, chunk in enumerate(chunks, start=1):
        try:
            yield index, yaml.load(chunk, Loader=_Loader)
        except yaml.YAMLError as exc:
            out.problems.append(
                Problem(path=path, object=f"document {index}", message=f"bad YAML ({_yaml_where(exc)})")
            )
        except (RecursionError, ValueError, TypeError, OverflowError) as exc:
            out.problems.append(
                Problem(path=path, object=f"document {index}", message=f"bad YAML ({exc.__class__.__name__})")
            )


def _split_documents(text: str) -> list[str]:
    chunks: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r\n"):
            chunks.append([])
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                chunks[-1].append(rest + "\n")
            continue
        chunks[-1].append(line)
    return ["".join(c) for c in chunks if any(s.strip() and not s.lstrip().startswith("#") for s in c)]


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def _describe(doc: Mapping[str, Any], label: str) -> str:
    kind = doc.get("kind")
    meta = doc.get("metadata")
    if isinstance(kind, str) and isinstance(meta, Mapping):
        name, ns = meta.get("name"), meta.get("namespace")
        if isinstance(name, str):
            return f"{kind} {ns}/{name}" if isinstance(ns, str) and ns else f"{kind} {name}"
    return label
