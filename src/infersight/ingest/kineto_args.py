"""The few Kineto event ``args`` analyses read, as the model's optional columns.

* Collective args (:data:`~infersight.model.trace.COMM_ARG_COLUMNS`), read by
  :mod:`infersight.overlap`: recent PyTorch (2.1+) writes ``Collective name``, ``In msg nelems``,
  ``Out msg nelems``, ``Group size``, ``dtype`` and ``Process Group Ranks`` on NCCL kernels and on
  ``record_param_comms`` CPU operators; older PyTorch gives those operators only ``Input Dims``
  and ``Input type``. Kernels keep them where they carry ``In msg nelems``, and keep their
  ``External id`` where a ``record_param_comms`` operator has the same one.
* ``Input Dims`` of CPU operators (``record_shapes=True``), read by :mod:`infersight.layers`, as
  text (``[32x4096, -, 4096]``).

Only the rows that carry a field are looked at one by one (a few hundred collectives); the
operator shapes are turned into text once per *distinct* shape. A trace without these args gets
no extra column, and a column in which no row holds a value is left out.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Sequence
from itertools import compress, repeat
from typing import Any, TypeAlias

import numpy as np
import orjson
import pandas as pd

from infersight.ingest.kineto_columns import int_column, map_categories, values
from infersight.ingest.kineto_structs import as_dicts, has_raw, is_struct_list, raw_texts
from infersight.ingest.kineto_text import ARGS_KEPT_OPERATOR, DIMS_VALUE, INPUT_DIMS_KEY

COLLECTIVE_KEY = "Collective name"
DTYPE_KEY = "dtype"
IN_NELEMS_KEY = "In msg nelems"
OUT_NELEMS_KEY = "Out msg nelems"
GROUP_SIZE_KEY = "Group size"
GROUP_RANKS_KEY = "Process Group Ranks"
EXTERNAL_ID_KEY = "External id"
INPUT_TYPE_KEY = "Input type"
MAX_DIMS_TEXT = 80  # characters of an input_dims value; longer ones are cut and end in "…"
UNKNOWN = -1

# Columns as built: int64 arrays (-1: unknown) or categoricals whose categories include "".
Column: TypeAlias = "np.ndarray | pd.Categorical[str]"
Columns: TypeAlias = "dict[str, Column]"


RAW_EXTERNAL_ID = "kernel_external_id_raw"  # a kernel part's External ids, before the link check


def kernel_comm_part(args: list[Any]) -> Columns:
    """One chunk's kernel comm columns, before the trace-wide link check.

    Holds the kernels' ``External id`` (:data:`RAW_EXTERNAL_ID`, kept until every operator of the
    file is known) and, when some kernel carries collective args, the comm columns (unknown on
    the other rows). :func:`kernel_comm_columns` turns the parts of all chunks into the columns.
    """
    if is_struct_list(args):
        carries = has_raw(args, "in_nelems")
    else:
        carries = list(map(operator.contains, args, repeat(IN_NELEMS_KEY)))
    columns: Columns = {RAW_EXTERNAL_ID: int_column(values(args, EXTERNAL_ID_KEY, UNKNOWN))}
    if any(carries):
        rows = np.flatnonzero(np.array(carries, dtype=bool))
        columns.update(_comm_columns(as_dicts(list(compress(args, carries))), rows, len(args)))
    return columns


def kernel_comm_columns(part: Columns, operator_ids: np.ndarray) -> Columns:
    """Comm columns of kernel rows (empty when no kernel carries collective args or a link).

    ``part`` is :func:`kernel_comm_part` of all kernels (chunks end to end), ``operator_ids``
    the ``External id`` values of the trace's ``record_param_comms`` operators.
    """
    columns = dict(part)
    ids = columns.pop(RAW_EXTERNAL_ID)
    assert isinstance(ids, np.ndarray)
    linked: np.ndarray | None = None
    if len(operator_ids):
        linked = np.where(np.isin(ids, operator_ids) & (ids != UNKNOWN), ids, UNKNOWN)
    if not columns and (linked is None or not (linked != UNKNOWN).any()):
        return {}
    columns["external_id"] = linked if linked is not None else np.full(len(ids), UNKNOWN, dtype=np.int64)
    return _known(columns)


def operator_comm_columns(args: list[Any], names: pd.Categorical[str]) -> Columns:
    """Comm columns of ``cpu_op`` range rows: filled for ``record_param_comms`` operators.

    Columns no row holds are kept (unknown everywhere); :func:`known_columns` drops them once
    the chunks are joined.
    """
    is_comm = np.asarray(names == ARGS_KEPT_OPERATOR, dtype=bool)
    if not is_comm.any():
        return {}
    rows = np.flatnonzero(is_comm)
    comm_args = as_dicts([args[i] for i in rows.tolist()])
    columns = _comm_columns(comm_args, rows, len(args))
    columns["external_id"] = _scatter(_ints(values(comm_args, EXTERNAL_ID_KEY)), rows, len(args))
    nelems, types = zip(*map(_first_input, comm_args), strict=True)
    columns["comm_input_nelems"] = _scatter(np.array(nelems, dtype=np.int64), rows, len(args))
    columns["comm_input_type"] = _scatter_text(list(types), rows, len(args))
    return columns


def input_dims_part(args: list[Any], names: pd.Categorical[str] | None = None) -> Columns:
    """``{"input_dims": ...}`` for ``cpu_op`` range rows, or {} when no operator has shapes.

    Values come as text (the slimmed trace keeps ``"Input Dims"`` as a string) or as lists
    (a trace parsed whole, and ``record_param_comms`` operators, whose args are kept); from
    structs as raw JSON text (:func:`_struct_dims_keys`, which needs the operator ``names``).
    """
    if is_struct_list(args):
        keys = _struct_dims_keys(args, names)
        if keys is None:
            return {}
    else:
        raw = values(args, INPUT_DIMS_KEY)
        if raw.count(None) == len(raw):
            return {}
        keys = list(map(_dims_key, raw))
    texts = pd.Categorical(keys)
    labels = map_categories(texts, {str(c): _dims_label(str(c)) for c in texts.categories})
    if list(labels.categories) == [""]:
        return {}
    if "" not in labels.categories:  # every operator has shapes: still give the unknown value a code
        labels = labels.add_categories([""]).reorder_categories(sorted(["", *map(str, labels.categories)]))
    return {"input_dims": labels}


def _struct_dims_keys(args: list[Any], names: pd.Categorical[str] | None) -> list[str] | None:
    """The text the slimmed read kept of each operator's ``Input Dims`` ("" where none), from
    the raw JSON of struct args; None when no operator has the key.

    The slimming kept a value made only of digits, brackets, commas, spaces and minus signs
    (:data:`kineto_text.DIMS_VALUE`) and cut any other (its label was ""), except for
    ``record_param_comms`` operators, whose args it kept whole (their label is the parsed value's).
    """
    raws = raw_texts(args, "input_dims")
    if not any(raws):
        return None
    kept = {raw: raw.decode() if raw and DIMS_VALUE.fullmatch(raw) else "" for raw in set(raws)}
    keys = list(map(kept.__getitem__, raws))
    if names is not None and ARGS_KEPT_OPERATOR in names.categories:
        for i in np.flatnonzero(np.asarray(names == ARGS_KEPT_OPERATOR, dtype=bool)).tolist():
            raw = raws[i]
            if raw and not keys[i]:
                keys[i] = _dims_key(orjson.loads(raw))
    return keys


def _dims_key(value: Any) -> str:
    """The categorical key of one parsed ``Input Dims`` value: a string as it is, else its JSON."""
    return value if type(value) is str else ("" if value is None else orjson.dumps(value).decode())


def _comm_columns(comm_args: list[dict[str, Any]], rows: np.ndarray, n: int) -> Columns:
    """The args PyTorch writes about a collective, for ``rows`` of an ``n``-row table."""
    collective = [str(v) if v else "" for v in values(comm_args, COLLECTIVE_KEY)]
    dtype = ["" if v is None else str(v) for v in values(comm_args, DTYPE_KEY)]
    return {
        "comm_collective": _scatter_text(collective, rows, n),
        "comm_dtype": _scatter_text(dtype, rows, n),
        "comm_in_nelems": _scatter(_ints(values(comm_args, IN_NELEMS_KEY)), rows, n),
        "comm_out_nelems": _scatter(_ints(values(comm_args, OUT_NELEMS_KEY)), rows, n),
        "comm_group_size": _scatter(np.array(list(map(_group_size, comm_args)), dtype=np.int64), rows, n),
    }


def unknown_column(template: Column, n: int) -> Column:
    """An ``n``-row column of the unknown value, of the same kind as ``template``."""
    if isinstance(template, np.ndarray):
        return np.full(n, UNKNOWN, dtype=template.dtype)
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int64), categories=pd.Index([""]))


def known_columns(columns: Columns) -> Columns:
    """The columns where some row holds a known value (no column of only -1 or "")."""
    return _known(columns)


def _known(columns: Columns) -> Columns:
    """The columns where some row holds a known value (no column of only -1 or "")."""
    return {
        name: column
        for name, column in columns.items()
        if (
            bool((column != UNKNOWN).any())
            if isinstance(column, np.ndarray)
            else list(column.categories) != [""]
        )
    }


def _first_input(args: dict[str, Any]) -> tuple[int, str]:
    """(elements of the first input, its type): what older PyTorch records of a collective."""
    dims, types = args.get(INPUT_DIMS_KEY), args.get(INPUT_TYPE_KEY)
    first_type = str(types[0]) if isinstance(types, list) and types else ""
    if not isinstance(dims, list) or not dims or not isinstance(dims[0], list) or not dims[0]:
        return UNKNOWN, first_type
    if not all(isinstance(d, int) for d in dims[0]):
        return UNKNOWN, first_type
    return int(math.prod(dims[0])), first_type


def _group_size(args: dict[str, Any]) -> int:
    """``Group size``, else the number of ``Process Group Ranks`` (a list written as a string)."""
    size = _int(args.get(GROUP_SIZE_KEY))
    if size:
        return size
    ranks = args.get(GROUP_RANKS_KEY)
    if isinstance(ranks, str):
        try:
            parsed = ast.literal_eval(ranks)
        except (ValueError, SyntaxError):
            return UNKNOWN
        return len(parsed) if isinstance(parsed, list | tuple) and parsed else UNKNOWN
    return UNKNOWN


def _int(value: Any) -> int:
    """An integer from a JSON number (floats truncated); -1 for anything else."""
    if isinstance(value, bool):
        return UNKNOWN
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return UNKNOWN


def _ints(raw: Sequence[Any]) -> np.ndarray:
    """JSON numbers of a few rows as int64 (-1 where absent, not a number, or beyond int64)."""
    return np.array([v if -(2**63) <= v < 2**63 else UNKNOWN for v in map(_int, raw)], dtype=np.int64)


def _scatter(values_at_rows: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """An ``n``-row column holding ``values_at_rows`` at ``rows`` and -1 elsewhere."""
    full = np.full(n, UNKNOWN, dtype=np.int64)
    full[rows] = values_at_rows
    return full


def spread(column: Column, offset: int, total: int) -> Column:
    """A part's column placed at ``offset`` of a ``total``-row column, unknown elsewhere."""
    if isinstance(column, np.ndarray):
        return _scatter(column, np.arange(offset, offset + len(column)), total)
    categories = column.categories
    codes = np.full(total, categories.get_loc(""), dtype=np.int64)
    codes[offset : offset + len(column)] = column.codes
    return pd.Categorical.from_codes(codes, categories=categories)


def model_column(column: Column, order: np.ndarray | None) -> pd.arrays.SparseArray | pd.Categorical[str]:
    """A built column, rows taken in ``order``, in its model dtype (numbers become sparse)."""
    if isinstance(column, np.ndarray):
        dense = column if order is None else column[order]
        return pd.arrays.SparseArray(dense, dtype=pd.SparseDtype(np.int64, UNKNOWN))
    return column if order is None else column.take(order)


def _scatter_text(texts: list[str], rows: np.ndarray, n: int) -> pd.Categorical[str]:
    """An ``n``-row categorical holding ``texts`` at ``rows`` and "" elsewhere."""
    categories = pd.Index(sorted({"", *texts}))
    codes = np.full(n, categories.get_loc(""), dtype=np.int64)
    codes[rows] = categories.get_indexer(pd.Index(texts, dtype=object))
    return pd.Categorical.from_codes(codes, categories=categories)


def _dims_label(text: str) -> str:
    """``[[32, 4096], [], [4096]]`` -> ``[32x4096, -, 4096]`` ("" when no input has a shape)."""
    if not text:
        return ""
    try:
        dims = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(dims, list) or not any(isinstance(d, list) and d for d in dims):
        return ""
    label = ", ".join("x".join(str(n) for n in d) if isinstance(d, list) and d else "-" for d in dims)
    label = f"[{label}]"
    return label if len(label) <= MAX_DIMS_TEXT else label[: MAX_DIMS_TEXT - 1] + "…"
