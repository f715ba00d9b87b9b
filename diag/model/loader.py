"""Read mesh objects from files: multi-document YAML, `kind: List`, `kubectl get -o yaml|json`, dirs.

`load_paths(paths)` never raises for bad input: each unreadable file, bad YAML document or
malformed object becomes a `Problem` naming the file, the line and column when known, and the
document or object; everything else is still loaded. `load_documents(docs, origin)` does the same
for already-parsed mappings (the live cluster reader hands API objects here). `load_mesh_config(path)`
reads a MeshConfig YAML (the `mesh` key of the istio ConfigMap, or the ConfigMap itself) and raises
`InputError` on bad input (it is a CLI flag, exit 2). `require_loadable(result, warn)` is what the
commands do with the problems: print the warnings, raise `InputError` (exit 2) on the first error.

YAML is read as kubectl reads it (`diag.model.kubeyaml`), and files are checked as the API server would
check them (`diag.model.apischema`): a document without `apiVersion` and `kind` (such as a MeshConfig
given as an object), or an unknown kind or version in one of Istio's API groups, is an error; an
unknown field of an Istio object is a warning. A directory without YAML or JSON files, or paths
with no document at all, are errors; an empty file among others is a warning.

The file, document and object levels of one reading stay together here, hence the length.

Served API versions: networking.istio.io v1, v1beta1, v1alpha3 (and extensions.istio.io for
WasmPlugin); core v1 Service/Namespace/Pod/ConfigMap; apps/v1 Deployment (istiod version only).
Kinds of other groups are skipped and counted. A ConfigMap named `istio` or `istio-<rev>`
with a `mesh` key becomes `LoadResult.mesh`. JSON files (what `kubectl get -o json` and the API
give) are parsed with the json module, which is much faster than YAML for large inputs.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diag.errors import InputError
from diag.model import apischema
from diag.model.mesh import parse_mesh_config
from diag.model.parse import ParseError, parse_object
from diag.model.resources import MeshConfig, Resource
from diag.model.validation import validate

YAML_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 256 * 1024 * 1024
# Top-level fields of a MeshConfig (istio/api mesh/v1alpha1/config.proto), to recognise one given
# where objects are expected.
MESH_CONFIG_FIELDS = frozenset(
    {
        "outboundTrafficPolicy", "defaultConfig", "discoverySelectors", "meshMTLS", "enableAutoMtls",
        "defaultServiceExportTo", "defaultVirtualServiceExportTo", "defaultDestinationRuleExportTo",
        "accessLogFile", "accessLogEncoding", "rootNamespace", "trustDomain", "extensionProviders",
        "enableTracing", "ingressClass", "ingressService", "localityLbSetting", "h2UpgradePolicy",
        "serviceSettings", "protocolDetectionTimeout", "connectTimeout", "inboundTrafficPolicy",
        "defaultProviders", "caCertificates", "mesh",
    }
)  # fmt: skip
MESH_CONFIG_HINT = "this looks like a MeshConfig: give it with --mesh-config, or inside the istio ConfigMap"
TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}

__all__ = [
    "LoadResult",
    "Problem",
    "load_documents",
    "load_mesh_config",
    "load_paths",
    "load_text",
    "parse_mesh_config",
    "require_loadable",
]


@dataclass(frozen=True, kw_only=True)
class Problem:
    """Something that could not be loaded: names the file, the line and column (1-based) when
    known, and the object (``Kind ns/name``) or document (``document 3``)."""

    path: str
    message: str
    object: str = ""  # "ServiceEntry ns/name" or "document 3"
    level: str = "error"
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.object}: {self.message}" if self.object else f"{where}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """Loaded objects (in input order), problems, and a MeshConfig if a ConfigMap carried one.
    ``documents`` holds every object read, of any kind, as the plain mapping it was (`kind: List`
    flattened), for consumers that need the raw objects (the lab)."""

    objects: tuple[Resource, ...] = ()
    problems: tuple[Problem, ...] = ()
    mesh: MeshConfig | None = None
    skipped: Mapping[str, int] | None = None  # unknown kinds → count
    documents: tuple[Mapping[str, Any], ...] = ()


class _Where:
    """Where a document is: its file, its label, its YAML node and the line its text starts at.
    (A plain slotted class, not a dataclass: one is made per object read.)

    A document read by the fast reader (`diag.model.yamlfast`) has no node yet: it keeps its
    ``chunk`` of text, and the node is composed from it only when a problem needs a line and
    column (most documents have none). ``prefix`` leads from that node to this object (the items
    of a `kind: List`)."""

    __slots__ = ("chunk", "first_line", "label", "node", "path", "prefix")

    def __init__(self, path: str, label: str, node: Any = None, first_line: int = 0,
                 chunk: str | None = None, prefix: tuple[str | int, ...] = ()) -> None:  # fmt: skip
        self.path = path
        self.label = label
        self.node = node
        self.first_line = first_line
        self.chunk = chunk
        self.prefix = prefix

    @property
    def has_text(self) -> bool:
        """A YAML document (line and column can be found), not JSON or an API object."""
        return self.node is not None or self.chunk is not None

    def at(self, keys: Sequence[str | int] = ()) -> tuple[int | None, int | None]:
        if self.node is None and self.chunk is not None:
            self.node = _composed(self.chunk)
        if self.node is None:  # JSON: no positions
            return None, None
        from diag.model import kubeyaml

        found = kubeyaml.locate(self.node, [*self.prefix, *keys])
        if found is None:
            return None, None
        return self.first_line + found[0] + 1, found[1] + 1

    def item(self, index: int) -> _Where:
        label = f"{self.label} item {index}"
        if self.node is None and self.chunk is not None:
            return _Where(self.path, label, None, self.first_line, self.chunk, (*self.prefix, "items", index))
        node = _child(self.node, ["items", index]) if self.node is not None else None  # JSON: no nodes
        return _Where(self.path, label, node, self.first_line, None, self.prefix if node is None else ())


@functools.lru_cache(maxsize=4)
def _composed(chunk: str) -> Any:
    """The YAML node of the (one) document of a chunk the fast reader read, for positions."""
    import yaml

    from diag.model import kubeyaml

    try:
        parsed = list(kubeyaml.documents(chunk))
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError):
        return None  # not expected: the fast reader reads only what kubeyaml reads
    return parsed[0][1] if parsed else None


class _Collector:
    def __init__(self, *, checked: bool = False, admission: bool = False) -> None:
        self.checked = checked  # files: check kinds and fields as the API server would
        self.admission = admission  # and refuse what Istio's validating webhook refuses
        self.objects: list[Resource] = []
        self.documents: list[Mapping[str, Any]] = []
        self.problems: list[Problem] = []
        self.mesh: MeshConfig | None = None
        self.skipped: Counter[str] = Counter()
        self.seen_documents = 0
        self.kind_problems: dict[tuple[str, str], str | None] = {}  # apischema.kind_problem's answers

    def result(self) -> LoadResult:
        return LoadResult(
            objects=tuple(self.objects),
            problems=tuple(self.problems),
            mesh=self.mesh,
            skipped=dict(self.skipped),
            documents=tuple(self.documents),
        )

    def file_problem(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path=str(path), message=message))

    def problem(self, where: _Where, message: str, *, name: str = "", keys: Sequence[str | int] = (),
                level: str = "error", hint: str | None = None) -> None:  # fmt: skip
        line, column = where.at(keys)
        self.problems.append(
            Problem(path=where.path, object=name or where.label, message=message, level=level,
                    line=line, column=column, hint=hint)
        )  # fmt: skip

    def object_problem(self, doc: Mapping[str, Any], where: _Where, message: str, *,
                       keys: Sequence[str | int] = (), level: str = "error",
                       hint: str | None = None) -> None:  # fmt: skip
        """A problem with an object, named "Kind ns/name" (made only now: most objects have none)."""
        self.problem(where, message, name=_describe(doc, where.label), keys=keys, level=level, hint=hint)

    def add_document(self, doc: Any, path: str, label: str, where: _Where | None = None) -> None:
        where = where or _Where(path, label)
        if doc is None:
            return
        self.seen_documents += 1
        if type(doc) is not dict and not isinstance(doc, Mapping):
            shown = TYPE_NAMES.get(type(doc), "not a mapping")
            self.problem(where, f"not a Kubernetes object: the document is {shown}, not a mapping with "
                         "apiVersion and kind")  # fmt: skip
            return
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
            if where.has_text:
                for i, item in enumerate(doc["items"]):
                    self.add_document(item, path, f"{label} item {i}", where.item(i))
                return
            # JSON or API input (no YAML nodes): the items' places are made directly, and plain
            # objects go straight to _add_object — what add_document does for them, minus the calls.
            add_object = self._add_object
            for i, item in enumerate(doc["items"]):
                item_where = _Where(path, f"{label} item {i}", None, where.first_line)
                item_kind = item.get("kind") if type(item) is dict else None
                if type(item_kind) is str and not item_kind.endswith("List"):
                    self.seen_documents += 1
                    add_object(item, item_where)
                else:
                    self.add_document(item, path, item_where.label, item_where)
            return
        self._add_object(doc, where)

    def _add_object(self, doc: Mapping[str, Any], where: _Where) -> None:
        # The object's name ("Kind ns/name") is only needed for a problem: made then, not per object.
        if self.checked and not self._acceptable(doc, where):
            return
        self.documents.append(doc)
        if doc.get("kind") == "ConfigMap":
            self._maybe_mesh(doc, where)
            return
        try:
            obj = parse_object(doc, f"{where.path}#{where.label}")
        except ParseError as exc:
            self.object_problem(doc, where, str(exc))
            return
        except RecursionError:
            self.object_problem(doc, where, "malformed: nested too deeply")
            return
        except (TypeError, ValueError, AttributeError, KeyError):
            self.object_problem(doc, where, "malformed: a field has an unexpected shape")
            return
        if obj is None:
            self.skipped[str(doc.get("kind"))] += 1
            return
        rejected = [m for m in validate(obj) if m.level == "error"] if self.admission else []
        for message in rejected:
            self.object_problem(doc, where, message.message, keys=_field_keys(message.field),
                                hint="Istio's validation rejects the object at admission")  # fmt: skip
        if not rejected:
            self.objects.append(obj)

    def _acceptable(self, doc: Mapping[str, Any], where: _Where) -> bool:
        """The API server's first checks: apiVersion and kind set, a kind it serves (Istio's
        groups), no unknown fields (a warning: the server drops them)."""
        api, kind = doc.get("apiVersion"), doc.get("kind")
        missing = (
            []  # both set (the usual case): skip building the list
            if type(api) is str and api and type(kind) is str and kind
            else [f"{field} not set" for field, value in (("apiVersion", api), ("kind", kind))
                  if not isinstance(value, str) or not value]
        )  # fmt: skip
        if missing:
            hint = MESH_CONFIG_HINT if set(doc) & MESH_CONFIG_FIELDS and not kind else None
            self.object_problem(doc, where, f"not a Kubernetes object: {', '.join(missing)}", hint=hint)
            return False
        key = (str(api), str(kind))
        if key not in self.kind_problems:  # the same few kinds again and again: asked once per load
            self.kind_problems[key] = apischema.kind_problem(*key)
        problem = self.kind_problems[key]
        if problem is not None:
            hint = "the API server refuses it; check the kind's spelling and version"
            self.object_problem(doc, where, problem, keys=["kind"], hint=hint)
            return False
        for keys, shown in apischema.unknown_fields(doc):
            self.object_problem(doc, where, f'unknown field "{shown}"', keys=keys, level="warning")
        return True

    def _maybe_mesh(self, doc: Mapping[str, Any], where: _Where) -> None:
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
            self.object_problem(doc, where, exc.message, keys=["data", "mesh"])


def _field_keys(field: str) -> list[str | int]:
    """``spec.ports[0].number`` → ``["spec", "ports", 0, "number"]``."""
    return [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", field)]


def _child(node: Any, keys: Sequence[str | int]) -> Any:
    """The YAML node at ``keys`` under ``node``, or None."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    for key in keys:
        if isinstance(node, MappingNode):
            node = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key), None)
        elif isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
        else:
            return None
    return node


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    The objects built here form no reference cycles; without the pause, generation-2 collections
    rescan the growing heap over and over and loading 50k entries costs twice as much.

    When the outermost pause ends, the objects it built would all be young: the next young
    collections would scan every one of them again (about 0.06 s for the 150k objects of a 10k
    ServiceEntry mesh) only to promote them. `_to_old_generation` moves them straight into the
    oldest generation instead. Nothing stays frozen: they are collected like any old object, by
    the next full collection. CPython starts a full collection when enough objects have been
    promoted since the last one, and moved objects are not counted, so the move is done at most
    twice between two full collections (a load and the snapshot built from it); every other pause
    ends as before. A process that loads again and again (`meshprobe watch` rebuilds its snapshot
    every cycle, and snapshots hold reference cycles) thus keeps at most two pauses' objects out of
    that count.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _to_old_generation()
            gc.enable()


_MOVES_PER_FULL_COLLECTION = 2  # a load and the snapshot built from it
_moves = [-1, 0]  # [count of full collections at the last move, moves made since then]


def _to_old_generation() -> None:
    """Move every tracked object into the oldest generation (gc.freeze then gc.unfreeze: two
    O(1) list splices), unless the moves allowed since the last full collection were made or
    something else holds frozen objects (unfreezing would release them)."""
    full_collections = gc.get_stats()[-1]["collections"]
    if gc.get_freeze_count():
        return
    if full_collections != _moves[0]:
        _moves[0], _moves[1] = full_collections, 0
    if _moves[1] >= _MOVES_PER_FULL_COLLECTION:
        return
    gc.freeze()
    gc.unfreeze()
    _moves[1] += 1


def load_paths(paths: Sequence[str | Path], *, admission: bool = False) -> LoadResult:
    """Load every YAML/JSON file under `paths` (files or directories, sorted, recursive). With
    ``admission``, an object Istio's validation rejects is an error too (what applying it to a
    cluster would give), not an object left for the caller to report."""
    out = _Collector(checked=True, admission=admission)
    empty: list[str] = []
    with paused_gc():
        for path in _expand(paths, out):
            text = _read(path, out)
            if text is not None:
                before = out.seen_documents
                _load_into(out, text, str(path))
                if out.seen_documents == before and not any(p.path == str(path) for p in out.problems):
                    empty.append(str(path))
    if out.seen_documents == 0 and not any(p.level == "error" for p in out.problems):
        given = ", ".join(str(p) for p in paths) or "(none)"
        out.problems.append(Problem(path=given, message="no objects: the files hold no YAML or JSON document",
                                    hint="give the files that hold the mesh configuration"))  # fmt: skip
    else:
        for name in empty:
            out.problems.append(Problem(path=name, message="no objects in this file", level="warning"))
    return out.result()


def load_text(text: str, origin: str = "<input>") -> LoadResult:
    """Load a YAML (or JSON) string, multi-document, checked like a file."""
    out = _Collector(checked=True)
    with paused_gc():
        _load_into(out, text, origin)
    return out.result()


def load_documents(docs: Iterable[Any], origin: str = "<input>") -> LoadResult:
    """Load already-parsed documents (mappings; `kind: List` expanded). Objects that came from an
    API server are taken as it served them: no kind or field checks."""
    out = _Collector()
    with paused_gc():
        for i, doc in enumerate(docs):
            out.add_document(doc, origin, f"document {i + 1}")
    return out.result()


def require_loadable(result: LoadResult, warn: Callable[[str], object]) -> LoadResult:
    """What a command does with the problems: ``warn`` each warning (``warning: ...``) and every
    error but the last (``error: ...``, with its hint), then raise the last error as `InputError`."""
    errors = [p for p in result.problems if p.level == "error"]
    for problem in result.problems:
        if problem.level != "error":
            warn(f"warning: {problem}\n")
    for problem in errors[:-1]:
        warn(f"error: {problem}\n" + (f"hint: {problem.hint}\n" if problem.hint else ""))
    if errors:
        raise InputError(str(errors[-1]), hint=errors[-1].hint)
    return result


def load_mesh_config(path: str | Path) -> MeshConfig:
    """Read a MeshConfig file (the `mesh` YAML, or the ConfigMap holding it). Raises `InputError`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the mesh config: {_os_reason(exc)}") from None
    text, problem = _decode(p, data)
    if text is None:
        raise InputError(str(problem))
    import yaml

    from diag.model import kubeyaml

    try:
        doc = kubeyaml.load(text)
    except yaml.YAMLError as exc:
        where = kubeyaml.where(exc, str(p))
        raise InputError(f"{where}: the mesh config is not valid YAML: {kubeyaml.problem(exc)}") from None
    if doc is None:
        return MeshConfig(ref=f"MeshConfig {p.name}")
    if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap":
        cm_data = doc.get("data")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
        if not isinstance(cm_data, Mapping) or "mesh" not in cm_data:
            raise InputError(f"{p}: the ConfigMap has no data.mesh key")
        ref = (
            f"ConfigMap {meta.get('namespace', '')}/{meta.get('name', '')}"
            if isinstance(meta, Mapping)
            else p.name
        )
        return _mesh_from_text(cm_data["mesh"], ref)
    if not isinstance(doc, Mapping):
        shown = TYPE_NAMES.get(type(doc), "something else")
        raise InputError(f"{p}: the mesh config must be a mapping, not {shown}")
    if isinstance(doc.get("kind"), str) and isinstance(doc.get("apiVersion"), str):
        hint = "give objects with --config; --mesh-config takes the istio ConfigMap's mesh"
        raise InputError(f"{p}: a {doc['kind']} object is not a mesh config", hint=hint)
    if "mesh" in doc and isinstance(doc["mesh"], str):
        return _mesh_from_text(doc["mesh"], f"MeshConfig {p.name}")
    return _checked_mesh(doc, f"MeshConfig {p.name}")


def _mesh_from_text(text: Any, ref: str) -> MeshConfig:
    if not isinstance(text, str):
        raise InputError(f"{ref}: data.mesh must be a YAML string")
    import yaml

    from diag.model import kubeyaml

    try:
        doc = kubeyaml.load(text)
    except yaml.YAMLError as exc:
        where = kubeyaml.where(exc, "line")
        raise InputError(f"{ref}: data.mesh is not valid YAML ({where}: {kubeyaml.problem(exc)})") from None
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
                out.file_problem(p, f"cannot list the directory: {_os_reason(exc)}")
                continue
            if not files:
                out.file_problem(p, "no .yaml, .yml or .json files in this directory")
            yield from files
        elif p.exists():
            yield p
        else:
            out.file_problem(p, "no such file or directory")


def _read(path: Path, out: _Collector) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            out.file_problem(path, f"file too large (over {MAX_FILE_BYTES >> 20} MiB)")
            return None
        data = path.read_bytes()
    except OSError as exc:
        out.file_problem(path, f"cannot read: {_os_reason(exc)}")
        return None
    text, problem = _decode(path, data)
    if problem is not None:
        out.problems.append(problem)
    return text


def _decode(path: Path, data: bytes) -> tuple[str | None, Problem | None]:
    """The text of a YAML or JSON file, or the problem naming where it is not text."""
    if b"\0" in data:
        line, column = _position(data, data.index(b"\0"))
        return None, Problem(path=str(path), line=line, column=column,
                             message="not a text file (a NUL byte): not YAML or JSON")  # fmt: skip
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        return None, Problem(path=str(path), line=line, column=column,
                             message="not UTF-8 text: YAML and JSON files must be UTF-8")  # fmt: skip


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of ``offset``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or "cannot access it").lower()


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
    import yaml  # YAML input only: JSON never loads the YAML machinery

    from diag.model import kubeyaml, yamlfast

    for index, first_line, chunk in yamlfast.split_documents(text):
        label = f"document {index}"
        fast = yamlfast.read(chunk)  # the common plain YAML, without building YAML nodes
        if fast is not None:
            for doc in fast:
                out.add_document(doc, path, label, _Where(path, label, None, first_line, chunk))
            continue
        try:
            parsed = list(kubeyaml.documents(chunk))
        except yaml.YAMLError as exc:
            line, column = kubeyaml.position(exc, first_line)
            out.problems.append(Problem(path=path, object=label, line=line, column=column,
                                        message=f"not valid YAML: {kubeyaml.problem(exc)}"))  # fmt: skip
            continue
        except (RecursionError, ValueError, TypeError, OverflowError):
            out.problems.append(Problem(path=path, object=label, message="not valid YAML: nested too deeply",
                                        line=first_line + 1))  # fmt: skip
            continue
        for doc, node in parsed:
            out.add_document(doc, path, label, _Where(path, label, node, first_line))


def _describe(doc: Mapping[str, Any], label: str) -> str:
    kind = doc.get("kind")
    meta = doc.get("metadata")
    if isinstance(kind, str) and (type(meta) is dict or isinstance(meta, Mapping)):
        name, ns = meta.get("name"), meta.get("namespace")
        if isinstance(name, str):
            return f"{kind} {ns}/{name}" if isinstance(ns, str) and ns else f"{kind} {name}"
    return label
