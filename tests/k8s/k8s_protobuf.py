"""Just enough of Kubernetes' protobuf encoding to read the Secrets Helm stores its releases in.

client-go sends built-in types as ``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\x00`` and a
``runtime.Unknown`` message (typeMeta = 1, raw = 2) whose ``raw`` is the object (k8s.io/api/core/v1
generated.proto). Only the fields of Secret and ConfigMap and the ObjectMeta fields Helm sets are read.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> dict[int, list[Any]]:
    """Field number -> values (ints for varints, bytes for length-delimited)."""
    out: dict[int, list[Any]] = {}
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i:i + length], i + length
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire} is not supported")
        out.setdefault(number, []).append(value)
    return out


def _str(f: dict[int, list[Any]], n: int) -> str | None:
    return f[n][0].decode("utf-8") if n in f else None


def _map(entries: list[bytes], as_bytes: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in entries:
        e = fields(entry)
        key = e[1][0].decode("utf-8") if 1 in e else ""
        value = e[2][0] if 2 in e else b""
        out[key] = base64.b64encode(value).decode() if as_bytes else value.decode("utf-8")
    return out


def _meta(data: bytes) -> dict[str, Any]:
    f = fields(data)
    meta: dict[str, Any] = {}
    for n, key in ((1, "name"), (2, "generateName"), (3, "namespace"), (5, "uid"), (6, "resourceVersion")):
        if _str(f, n):
            meta[key] = _str(f, n)
    if 11 in f:
        meta["labels"] = _map(f[11])
    if 12 in f:
        meta["annotations"] = _map(f[12])
    return meta


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded Secret or ConfigMap as the JSON object it stands for. Raises ValueError otherwise."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf body")
    unknown = fields(body[len(MAGIC):])
    type_meta = fields(unknown[1][0]) if 1 in unknown else {}
    kind, api_version = _str(type_meta, 2), _str(type_meta, 1)
    obj = fields(unknown[2][0])
    out: dict[str, Any] = {"apiVersion": api_version or "v1", "kind": kind,
                           "metadata": _meta(obj[1][0]) if 1 in obj else {}}
    if kind == "Secret":
        if 2 in obj:
            out["data"] = _map(obj[2], as_bytes=True)
        if 3 in obj:
            out["type"] = _str(obj, 3)
    elif kind == "ConfigMap":
        if 2 in obj:
            out["data"] = _map(obj[2])
    else:
        raise ValueError(f"protobuf {kind} is not supported by the stand-in")
    return out
