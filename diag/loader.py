"""Read mesh objects from files: multi-document YAML, `kind: List`, `kubectl get -o yaml`, dirs.

`load_paths(paths)` never raises for bad input: each unreadable file, bad YAML document or
malformed object becomes a `Problem` naming the file (and document/object), and everything else is
still loaded. `load_documents(docs, origin)` does the same for already-parsed mappings (the live
cluster reader hands API objects here). `load_mesh_config(path)` reads a MeshConfig YAML (the
`mesh` key of the istio ConfigMap, or the ConfigMap itself) and raises `InputError` on bad input
(it is a CLI flag, exit 2).

Served API versions: networking.istio.io v1, v1beta1, v1alpha3 (and extensions.istio.io for
WasmPlugin); core v1 Service/Namespace/Pod/ConfigMap; apps/v1 Deployment (istiod version only).
Unknown kinds are skipped and counted, not errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diag.resources import MeshConfig, Resource


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


def load_paths(paths: Sequence[str | Path]) -> LoadResult:
    """Load every YAML/JSON file under `paths` (files or directories, sorted, recursive)."""
    del paths
    raise NotImplementedError


def load_text(text: str, origin: str = "<input>") -> LoadResult:
    """Load a YAML string (multi-document)."""
    del text, origin
    raise NotImplementedError


def load_documents(docs: Iterable[Any], origin: str = "<input>") -> LoadResult:
    """Load already-parsed documents (mappings; `kind: List` expanded)."""
    del docs, origin
    raise NotImplementedError


def load_mesh_config(path: str | Path) -> MeshConfig:
    """Read a MeshConfig file (the `mesh` YAML, or the ConfigMap holding it). Raises `InputError`."""
    del path
    raise NotImplementedError


def parse_mesh_config(doc: Mapping[str, Any], ref: str = "MeshConfig") -> MeshConfig:
    """A MeshConfig from the parsed `mesh` mapping (defaults: pkg/config/mesh/mesh.go)."""
    del doc, ref
    raise NotImplementedError
