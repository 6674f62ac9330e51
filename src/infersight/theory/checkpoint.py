"""What a local HuggingFace checkpoint folder says about its tensors, without loading weights.

Why: a config can be misread (wrong dtype, a vision tower or MTP layers we do not model, an
untied lm_head), and the checkpoint is the ground truth. ``model.safetensors.index.json`` gives
the total byte size; each ``*.safetensors`` file starts with an 8-byte little-endian header length
and a JSON header listing every tensor's dtype and shape, so the exact parameter count per dtype
costs one small read per shard. Shards that are not present (only config + index downloaded)
are simply not counted.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infersight.errors import InputError
from infersight.safe_io import MAX_CONFIG_BYTES, check_regular_file, read_bounded_text
from infersight.validate import MAX_EXACT_INT, JsonFields, json_object, parse_json, shown

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors format caps headers at 100 MB
MAX_TENSOR_RANK = 16  # dimensions of one tensor (real checkpoints use 1-4)

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
    """The JSON header of one ``.safetensors`` file (tensor name -> dtype/shape/offsets).

    Only a regular file is opened (a FIFO named like a shard would block ``open()``), and only
    its first ``8 + length`` bytes are read, with ``length`` capped by the format's own limit.
    """
    resolved = check_regular_file(path, "safetensors shard")
    try:
        with resolved.open("rb") as handle:
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
        raise InputError(path, f"cannot read: {error.strerror or error}") from error
    if len(header_bytes) < length:
        raise InputError(path, "truncated safetensors header")
    header = parse_json(header_bytes, path, "safetensors header")
    if not isinstance(header, dict):
        raise InputError(path, "safetensors header is not a JSON object")
    return header


def _tensor_elements(tensor: JsonFields) -> int:
    """Elements of one tensor: the product of its shape (non-negative ints, bounded product)."""
    shape = tensor.integers("shape", minimum=0, maximum=MAX_EXACT_INT, max_items=MAX_TENSOR_RANK)
    if shape is None:
        raise InputError(tensor.source, f"{tensor.name('shape')} is missing")
    elements = math.prod(shape)
    if elements > MAX_EXACT_INT:
        raise InputError(tensor.source, f"{tensor.name('shape')} holds {elements:.3g} elements: implausible")
    return elements


def _tensor_bytes(tensor: JsonFields) -> int:
    """Bytes of one tensor from its ``data_offsets`` [begin, end] (0 when absent)."""
    offsets = tensor.integers("data_offsets", minimum=0, maximum=MAX_EXACT_INT, max_items=2)
    if not offsets:
        return 0
    if len(offsets) != 2 or offsets[1] < offsets[0]:
        raise InputError(
            tensor.source, f"{tensor.name('data_offsets')} must be [begin, end] with end >= begin"
        )
    return offsets[1] - offsets[0]


def _count(header: dict[str, Any], path: Path, params: dict[str, int]) -> int:
    """Add a header's element counts to ``params`` by dtype; return its tensor bytes."""
    data_bytes = 0
    fields = JsonFields(header, path)
    for name in header:
        if name == "__metadata__":
            continue
        tensor = fields.child(name)
        if tensor is None or "dtype" not in tensor.data or "shape" not in tensor.data:
            raise InputError(path, f"safetensors tensor {shown(name)} lacks dtype/shape")
        dtype = tensor.text("dtype") or ""
        label = SAFETENSORS_DTYPES.get(dtype, (dtype.lower(), 0.0))[0]
        params[label] = params.get(label, 0) + _tensor_elements(tensor)
        data_bytes += _tensor_bytes(tensor)
    return data_bytes


def _shard_path(folder: Path, index_path: Path, shard: object) -> Path:
    """A shard named by the index: a plain file name inside the folder, nothing else."""
    if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard in (".", ".."):
        raise InputError(
            index_path, f"weight_map names shard {shown(shard)}: expected a file name in the folder"
        )
    return folder / shard


def read_checkpoint(folder: Path) -> Checkpoint | None:
    """Facts from the index and/or shards in ``folder``; None when it has neither."""
    index_path = folder / INDEX_FILE
    total: int | None = None
    names: tuple[str, ...] = ()
    shard_files: list[Path] = []
    if index_path.exists() or index_path.is_symlink():
        text = read_bounded_text(index_path, MAX_CONFIG_BYTES, "safetensors index")
        index = json_object(
            parse_json(text, index_path, "safetensors index"), index_path, "safetensors index"
        )
        metadata = index.child("metadata")
        size = metadata.raw("total_size") if metadata is not None else None
        if isinstance(size, bool) or not isinstance(size, int | float) or not size > 0:
            raise InputError(index_path, "no positive metadata.total_size in the safetensors index")
        assert metadata is not None
        total = int(metadata.number("total_size", above=0, maximum=MAX_EXACT_INT))
        weight_map = index.child("weight_map")
        mapping = weight_map.data if weight_map is not None else {}
        names = tuple(mapping)
        shard_files = sorted({_shard_path(folder, index_path, shard) for shard in mapping.values()})
    elif (folder / SINGLE_FILE).exists():
        shard_files = [folder / SINGLE_FILE]
    else:
        return None
    present = [path for path in shard_files if path.exists() or path.is_symlink()]
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
