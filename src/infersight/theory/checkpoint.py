"""What a local HuggingFace checkpoint folder says about its tensors, without loading weights.

Why: a config can be misread (wrong dtype, a vision tower or MTP layers we do not model, an
untied lm_head), and the checkpoint is the ground truth. ``model.safetensors.index.json`` gives
the total byte size; each ``*.safetensors`` file starts with an 8-byte little-endian header length
and a JSON header listing every tensor's dtype and shape, so the exact parameter count per dtype
costs one small read per shard. Shards that are not present (only config + index downloaded)
are simply not counted.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infersight.errors import InputError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors format caps headers at 100 MB

# safetensors dtype -> (our label, bytes per element); packed int types hold quantised weights
SAFETENSORS_DTYPES: dict[str, tuple[str, float]] = {
    "F64": ("fp64", 8.0),
    "F32": ("fp32", 4.0),
    "F16": ("fp16", 2.0),
    "BF16": ("bf16", 2.0),
    "F8_E4M3": ("fp8", 1.0),
    "F8_E5M2": ("fp8", 1.0),
    "F8_E8M0": ("fp8", 1.0),
    "I64": ("int64", 8.0),
    "I32": ("int32", 4.0),
    "I16": ("int16", 2.0),
    "I8": ("int8", 1.0),
    "U8": ("uint8", 1.0),
    "BOOL": ("bool", 1.0),
}


@dataclass(frozen=True)
class Checkpoint:
    """Tensor facts of a checkpoint folder."""

    total_bytes: int | None  # index metadata.total_size, else the sum over the headers read
    tensor_names: tuple[str, ...]  # from the index weight_map, else from the headers
    params_by_dtype: dict[str, int] | None  # exact, when every shard's header was read; else None
    shards_missing: int  # shards named by the index but absent from the folder

    @property
    def params(self) -> int | None:
        return sum(self.params_by_dtype.values()) if self.params_by_dtype is not None else None

    @property
    def dominant_dtype(self) -> str | None:
        """The dtype holding most parameters (what the checkpoint is 'in')."""
        if not self.params_by_dtype:
            return None
        return max(self.params_by_dtype.items(), key=lambda item: item[1])[0]


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of one ``.safetensors`` file (tensor name -> dtype/shape/offsets)."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(HEADER_LENGTH_BYTES)
            if len(prefix) < HEADER_LENGTH_BYTES:
                raise InputError(path, "truncated safetensors file (no header length)")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise InputError(
                    path, f"safetensors header length {length} is implausible: not a safetensors file"
                )
            header_bytes = handle.read(length)
    except OSError as error:
        raise InputError(path, f"cannot read: {error}") from error
    if len(header_bytes) < length:
        raise InputError(path, "truncated safetensors header")
    try:
        header = json.loads(header_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"safetensors header is not JSON ({error})") from error
    if not isinstance(header, dict):
        raise InputError(path, "safetensors header is not a JSON object")
    return header


def _count(header: dict[str, Any], path: Path, params: dict[str, int]) -> int:
    """Add a header's element counts to ``params`` by dtype; return its tensor bytes."""
    data_bytes = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(tensor, dict) or "dtype" not in tensor or "shape" not in tensor:
            raise InputError(path, f"safetensors tensor {name!r} lacks dtype/shape")
        label = SAFETENSORS_DTYPES.get(str(tensor["dtype"]), (str(tensor["dtype"]).lower(), 0.0))[0]
        params[label] = params.get(label, 0) + math.prod(int(dim) for dim in tensor["shape"])
        offsets = tensor.get("data_offsets") or (0, 0)
        data_bytes += int(offsets[1]) - int(offsets[0])
    return data_bytes


def read_checkpoint(folder: Path) -> Checkpoint | None:
    """Facts from the index and/or shards in ``folder``; None when it has neither."""
    index_path = folder / INDEX_FILE
    total: int | None = None
    names: tuple[str, ...] = ()
    shard_files: list[Path] = []
    if index_path.exists():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(index_path, f"not a readable JSON safetensors index ({error})") from error
        if not isinstance(index, dict):
            raise InputError(index_path, "expected a JSON object")
        size = (index.get("metadata") or {}).get("total_size")
        if not isinstance(size, int | float) or isinstance(size, bool) or size <= 0:
            raise InputError(index_path, "no positive metadata.total_size in the safetensors index")
        total = int(size)
        weight_map = index.get("weight_map") or {}
        if not isinstance(weight_map, dict):
            raise InputError(index_path, "weight_map must be a JSON object")
        names = tuple(weight_map)
        shard_files = [folder / shard for shard in sorted(set(map(str, weight_map.values())))]
    elif (folder / SINGLE_FILE).exists():
        shard_files = [folder / SINGLE_FILE]
    else:
        return None
    present = [path for path in shard_files if path.exists()]
    if not present:
        return Checkpoint(total, names, None, len(shard_files))
    params: dict[str, int] = {}
    data_bytes = 0
    header_names: list[str] = []
    for path in present:
        header = read_safetensors_header(path)
        data_bytes += _count(header, path, params)
        header_names += [name for name in header if name != "__metadata__"]
    complete = len(present) == len(shard_files)
    return Checkpoint(
        total_bytes=total if total is not None else data_bytes,
        tensor_names=names or tuple(header_names),
        params_by_dtype=params if complete else None,
        shards_missing=len(shard_files) - len(present),
    )
