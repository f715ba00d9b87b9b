"""Request bodies in Kubernetes' protobuf encoding (``application/vnd.kubernetes.protobuf``), which
kubectl's typed clients send (``kubectl create namespace``, ``auth can-i``, ``run``, ``debug``).

The envelope is ``k8s\\x00`` + a ``runtime.Unknown`` (staging/src/k8s.io/apimachinery/pkg/runtime/
serializer/protobuf/protobuf.go): TypeMeta (1), raw (2). ``protobuf_schema.json`` beside this module
holds the field numbers, JSON names and types of the messages reachable from the kinds listed in
``PACKAGES`` — the wire format of k8s.io/api's ``generated.proto`` at v0.32 (apps/v1: Deployment and
ReplicaSet, which ``kubectl create deployment`` and typed clients send) — with flag 2 on the
fields Go inlines in JSON (``json:",inline"``). Decoded objects are JSON-shaped: times as RFC 3339,
quantities as strings, IntOrString as int or string, ``bytes`` as base64; empty strings dropped.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import struct
from pathlib import Path
from typing import Any

from lab.apiserver.errors import BadRequest, unsupported_media_type

MAGIC = b"k8s\x00"
PACKAGES = {
    "": "core",
    "apps": "apps",
    "batch": "batch",
    "rbac.authorization.k8s.io": "rbac",
    "authorization.k8s.io": "authorization",
    "authentication.k8s.io": "authentication",
    "discovery.k8s.io": "discovery",
}
Field = tuple[str, Any, int]  # JSON name, type, 0 optional / 1 repeated / 2 inline


@functools.cache
def _schema() -> dict[str, dict[int, Field]]:
    raw = json.loads((Path(__file__).with_name("protobuf_schema.json")).read_text())
    return {
        name: {num: (fname, ftype, flag) for num, fname, ftype, flag in fields}
        for name, fields in raw.items()
    }


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise BadRequest("the protobuf body ends inside a varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) in order."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        num, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise BadRequest(f"unsupported protobuf wire type {wire}")
        out.append((num, wire, value))
    return out


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    value = value - (1 << 64) if value >= 1 << 63 else value
    return value if bits == 64 else ((value + (1 << 31)) % (1 << 32)) - (1 << 31)


def _scalar(ftype: str, wire: int, raw: Any) -> Any:
    if ftype == "string":
        return bytes(raw).decode()
    if ftype == "bytes":
        return base64.b64encode(bytes(raw)).decode()
    if ftype == "bool":
        return bool(raw)
    if ftype in ("int32", "int64"):
        return _signed(int(raw), 32 if ftype == "int32" else 64)
    if ftype == "double":
        return struct.unpack("<d", raw)[0]
    return raw


def _time(data: bytes, micro: bool) -> str | None:
    parts = {num: value for num, _, value in _fields(data)}
    seconds, nanos = _signed(parts.get(1, 0), 64), parts.get(2, 0)
    if not seconds and not nanos:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _special(ftype: str, data: bytes) -> Any:
    parts = {num: value for num, _, value in _fields(data)}
    if ftype in ("meta.Time", "meta.MicroTime"):
        return _time(data, ftype == "meta.MicroTime")
    if ftype == "resource.Quantity":
        return bytes(parts.get(1, b"")).decode()
    if ftype == "intstr.IntOrString":
        return bytes(parts.get(3, b"")).decode() if parts.get(1) else _signed(parts.get(2, 0), 32)
    if ftype == "meta.Duration":
        return f"{_signed(parts.get(1, 0), 64) / 1e9:g}s"
    if ftype in ("runtime.RawExtension", "meta.FieldsV1"):
        return json.loads(bytes(parts.get(1, b"null")))
    raise BadRequest(f"no protobuf decoding for {ftype}")


SPECIAL = {
    "meta.Time",
    "meta.MicroTime",
    "resource.Quantity",
    "intstr.IntOrString",
    "meta.Duration",
    "runtime.RawExtension",
    "meta.FieldsV1",
}
NUMERIC = {"int32", "int64", "bool", "double"}


def _value(ftype: str, wire: int, raw: Any) -> Any:
    if ftype in SPECIAL:
        return _special(ftype, raw)
    if ftype in _schema():
        return decode_message(ftype, raw)
    return _scalar(ftype, wire, raw)


def _packed(ftype: str, raw: bytes) -> list[Any]:
    out, pos = [], 0
    while pos < len(raw):
        if ftype == "double":
            out.append(struct.unpack("<d", raw[pos : pos + 8])[0])
            pos += 8
        else:
            value, pos = _varint(raw, pos)
            out.append(_scalar(ftype, 0, value))
    return out


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    schema = _schema()[name]
    out: dict[str, Any] = {}
    for num, wire, raw in _fields(data):
        field = schema.get(num)
        if field is None:
            continue
        fname, ftype, flag = field
        if isinstance(ftype, list):  # map<key, value>
            entry = {n: (w, v) for n, w, v in _fields(raw)}
            key = _value(ftype[1], *entry[1]) if 1 in entry else ""
            value = _value(ftype[2], *entry[2]) if 2 in entry else ""
            out.setdefault(fname, {})[key] = value
        elif flag == 1:
            values = out.setdefault(fname, [])
            if wire == 2 and ftype in NUMERIC:
                values.extend(_packed(ftype, raw))
            else:
                values.append(_value(ftype, wire, raw))
        elif flag == 2:
            out.update(decode_message(ftype, raw))
        else:
            value = _value(ftype, wire, raw)
            if value is not None and value != "":
                out[fname] = value
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded request body as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise BadRequest("the protobuf body does not start with the Kubernetes magic number")
    unknown = {num: value for num, _, value in _fields(body[len(MAGIC) :])}
    type_meta = {num: bytes(value).decode() for num, _, value in _fields(unknown.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    package = PACKAGES.get(api_version.rpartition("/")[0])
    if package is None or f"{package}.{kind}" not in _schema():
        raise unsupported_media_type(["application/json", "application/yaml"])
    obj = decode_message(f"{package}.{kind}", unknown.get(2, b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
