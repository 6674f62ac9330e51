"""Readable short names for GPU kernels.

Profilers report kernels by their full demangled C++ signature, which for ATen, CUTLASS or
FlashAttention kernels runs to hundreds or thousands of characters of template arguments.
Reports need the name an engineer would say out loud, short enough for a table cell yet
specific enough that two kernels that behave differently do not merge into one row.

The scheme (applied in this order; the output is a fixed point, i.e. simplifying a
simplified name returns it unchanged):

1. Whitespace is collapsed; a ROCm ``.kd`` / ``[clone .kd]`` suffix is dropped.
2. Itanium-mangled names (``_ZN7ck_tile6kentry...``) are partly demangled: the nested name
   becomes ``first_namespace::function``; for generic entry wrappers (``ck_tile::kentry``)
   the first class named in the template arguments is used instead
   (``ck_tile::Rmsnorm2dFwd``, ``ck_tile::FmhaBatchPrefillWithPagedKVCacheKernel``).
3. Tensile/hipBLASLt GEMMs (``Cijk_...``) keep the prefix up to the macro-tile (``MT...``)
   and matrix-instruction (``MI...``) tokens; the dozens of tuning flags after them are dropped
   (two solutions that differ only in such flags share one short name).
4. Demangled C++ signatures lose their return type (``void``, ``std::enable_if<...>::type``)
   and parameter list, and the kernel becomes ``library::name`` where ``library`` is the first
   namespace that says something (``at``, ``native``, ``c10``, ``std``, ``detail`` and anonymous
   namespaces are skipped) and template arguments are dropped:
   ``vllm::fused_add_rms_norm_kernel``, ``flash::flash_fwd_kernel``,
   ``pytorch_flash::flash_fwd_kernel`` (the two FlashAttention copies stay distinct).
5. ATen's generic kernels (``elementwise_kernel``, ``vectorized_elementwise_kernel``,
   ``unrolled_elementwise_kernel``, ``reduce_kernel``, ...) keep the one template argument
   that says what they compute — the functor, lambda-owning function or reduction op — so
   ``vectorized_elementwise_kernel<silu_kernel>`` and
   ``vectorized_elementwise_kernel<bfloat16_copy_kernel_cuda>`` stay apart, and
   ``reduce_kernel<ArgMaxOps>`` is not confused with ``reduce_kernel<MeanOps>``. Wrappers
   around that argument (``gpu_kernel_impl_nocast``, ``BinaryFunctor``, ``ReduceOp``,
   ``func_wrapper_t``, ...) are looked through.
6. Kernels that are only a launch shell around a class (``cutlass::Kernel2<X>``,
   ``cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<...>>>``) are
   named after that class: ``cutlass_80_tensorop_s16816gemm_bf16_128x64_64x6_tn_align8``,
   ``flash::FlashAttnFwdSm90``.
7. Plain C identifiers (cuBLAS ``sm90_xmma_gemm_...``, ``nvjet_tst_...``, Triton
   ``triton_poi_fused_...``, NCCL ``ncclDevKernel_AllReduce_Sum_bf16_RING_LL``) are kept as
   they are: their suffixes (tile sizes, Triton's kernel index) are what tells them apart.
8. Anything still longer than :data:`MAX_SHORT_NAME` characters is cut in the middle with an
   ellipsis, keeping the head and the distinguishing tail.

Every step is a bounded scan over the string: the function never raises and is
deterministic, whatever it is given (unbalanced brackets, 10 kB names, non-ASCII text).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

MAX_SHORT_NAME = 200
"""Longest short name returned; longer results are cut in the middle."""

_KEEP_HEAD = 140
_KEEP_TAIL = 40
_ELLIPSIS = "…"
_MAX_DEPTH = 8  # template nesting we look through when hunting for a functor

_OPENERS = {"<": ">", "(": ")", "[": "]", "{": "}"}
_BRACKET = re.compile(r"[<>()\[\]{}]")

# Namespaces that carry no information about which library a kernel belongs to.
_NOISE_NAMESPACES = frozenset(
    {
        "",
        "at",
        "native",
        "c10",
        "std",
        "detail",
        "cuda",
        "anonymous",
        "anon",
        "impl",
        "internal",
        "kernel",
        "kernels",
        "at_cuda_detail",
    }
)

# ATen kernels whose identity lies in a template argument: keep it as ``name<functor>``.
_FUNCTOR_KERNELS = frozenset(
    {
        "elementwise_kernel",
        "vectorized_elementwise_kernel",
        "unrolled_elementwise_kernel",
        "elementwise_kernel_manual_unroll",
        "elementwise_kernel_with_index",
        "index_elementwise_kernel",
        "reduce_kernel",
        "distribution_elementwise_grid_stride_kernel",
        "distribution_nullary_kernel",
        "multi_tensor_apply_kernel",
    }
)

# Kernels that are only a launch shell around the class that does the work.
_SHELL_KERNELS = frozenset({"Kernel", "Kernel2", "device_kernel", "kentry", "global_kernel"})

# Generic member names: the enclosing class or namespace names the kernel (``gemvx::kernel``).
_GENERIC_MEMBERS = frozenset({"kernel", "run", "entry", "launch"})

# Wrappers looked through when searching a template argument for the functor / class.
_PASSTHROUGH = frozenset(
    {
        "gpu_kernel_impl",
        "gpu_kernel_impl_nocast",
        "gpu_index_kernel",
        "BinaryFunctor",
        "AUnaryFunctor",
        "BUnaryFunctor",
        "ReduceOp",
        "func_wrapper_t",
        "enable_sm90_or_later",
        "enable_sm80_to_sm89",
        "enable_sm100_or_later",
        "TensorListMetadata",
        "FunctorWrapper",
    }
)

# Template arguments that are types or plumbing, never the functor.
_PLUMBING = frozenset(
    {
        "int",
        "long",
        "short",
        "char",
        "bool",
        "float",
        "double",
        "unsigned",
        "signed",
        "half",
        "float2",
        "float4",
        "int2",
        "int4",
        "__half",
        "__nv_bfloat16",
        "__hip_bfloat16",
        "BFloat16",
        "Half",
        "OpaqueType",
        "Array",
        "array",
        "TrivialOffsetCalculator",
        "OffsetCalculator",
        "LoadWithCast",
        "StoreWithCast",
        "LoadWithoutCast",
        "StoreWithoutCast",
        "bfloat16_t",
        "half_t",
        "true",
        "false",
    }
)

_WS_RE = re.compile(r"\s+")
_ANON_RE = re.compile(r"\(anonymous namespace\)::|<unnamed>::|\{anonymous\}::|anonymous_namespace::")
_KD_SUFFIX_RE = re.compile(r"(?:\s*\[clone \.kd\]|\.kd)$")
_CIJK_RE = re.compile(r"^(Cijk_[A-Za-z0-9_]*?_MT\d+x\d+x\d+(?:_MI\d+(?:x\d+)*)?)(?:_|$)")
_LITERAL_RE = re.compile(r"^(?:\([\w:\s]+\))?-?\d+[uUlL]*$|^'.'$")
_TYPE_PARAM_RE = re.compile(r"^T\d*$")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MANGLED_SOURCE_NAME_RE = re.compile(r"(?<!\d)(\d{1,4})")


@functools.lru_cache(maxsize=8192)
def simplify_kernel_name(full: str) -> str:
    """The short, readable name of one kernel (see the module docstring for the scheme).

    Cached (a pure function of the name): the kernel table, the attribution and the eager-kernel
    lists each shorten the same distinct names, and a long templated name costs ~1 ms of
    bracket walking.
    """
    text = _ANON_RE.sub("", _WS_RE.sub(" ", str(full)).strip())
    text = _KD_SUFFIX_RE.sub("", text)
    if not text:
        return ""
    if text.startswith("_Z"):
        short = _simplify_mangled(text)
    elif text.startswith("Cijk_"):
        match = _CIJK_RE.match(text)
        short = match.group(1) if match else text
    else:
        short = _simplify_qualified(kernel_name_head(text), 0) or text
    return _cap_length(short.strip() or text)


def simplify_names(categorical: pd.Categorical) -> pd.Categorical:
    """Short names for a categorical of full kernel names, one call per *distinct* name.

    A million kernels with 300 distinct names cost 300 calls. Distinct full names that share a
    short name (e.g. two Tensile solutions differing only in tuning flags) share one category.
    Missing values stay missing.
    """
    categorical = pd.Categorical(categorical)
    short = [simplify_kernel_name(str(name)) for name in categorical.categories]
    code_map, uniques = pd.factorize(pd.Index(short, dtype=object))
    old_codes = np.asarray(categorical.codes)
    if len(code_map) == 0:
        new_codes = np.full(len(old_codes), -1, dtype=np.int64)
    else:
        new_codes = np.where(old_codes >= 0, code_map[np.clip(old_codes, 0, None)], -1)
    return pd.Categorical.from_codes(new_codes, categories=pd.Index(uniques, dtype=object))


@functools.lru_cache(maxsize=8192)
def kernel_name_head(full: str) -> str:
    """The kernel's qualified name with its template arguments, without return type or parameters.

    ``void at::native::reduce_kernel<512, ...>(at::native::ReduceOp<...>)`` becomes
    ``at::native::reduce_kernel<512, ...>``. Category patterns are matched against this, so a
    type named in a parameter list (``flashinfer::QuantizationSFLayout`` in a TensorRT-LLM
    quantisation kernel) cannot decide what the kernel is. Names without a parameter list
    (cuBLAS, Triton, mangled names) are returned whole.
    """
    text = _ANON_RE.sub("", _WS_RE.sub(" ", str(full)).strip())
    cut = _first_top_level(text, "(")
    head = text[:cut] if cut > 0 else text
    return _last_top_level_word(head.strip()) or text


def _simplify_qualified(qualified: str, depth: int) -> str:
    """``library::name`` (plus the functor for ATen generic kernels) of one qualified C++ name."""
    components = _split_top_level(qualified, "::")
    components = [c.strip() for c in components if c.strip()]
    if not components:
        return ""
    last = components[-1]
    base, targs = _split_template(last)
    if base in _FUNCTOR_KERNELS and depth < _MAX_DEPTH:
        functor = _functor_of(targs, depth + 1)
        return f"{base}<{functor}>" if functor else base
    if base in _SHELL_KERNELS and depth < _MAX_DEPTH:
        inner = _first_meaningful_argument(targs)
        if inner:
            inner_short = _simplify_qualified(_argument_head(inner), depth + 1)
            if inner_short:
                return inner_short
    if base in _GENERIC_MEMBERS and len(components) > 1:
        owner = _split_template(components[-2])[0]
        if _IDENT_RE.fullmatch(owner):
            return f"{owner}::{base}"
    if base in _PASSTHROUGH and depth < _MAX_DEPTH:
        inner = _first_meaningful_argument(targs)
        if inner:
            inner_short = _simplify_qualified(_argument_head(inner), depth + 1)
            if inner_short:
                return inner_short
    library = next(
        (
            _split_template(c)[0]
            for c in components[:-1]
            if _split_template(c)[0] not in _NOISE_NAMESPACES and _IDENT_RE.fullmatch(_split_template(c)[0])
        ),
        "",
    )
    return f"{library}::{base}" if library and base else base


def _functor_of(targs: str, depth: int) -> str:
    """The name of what an ATen generic kernel computes, from its template arguments."""
    argument = _first_meaningful_argument(targs)
    if not argument:
        return ""
    head = _argument_head(argument)
    components = [c.strip() for c in _split_top_level(head, "::") if c.strip()]
    while len(components) > 1 and components[-1].startswith("operator"):
        components.pop()  # ``sum_functor<...>::operator()`` is named by its class
    if not components:
        return ""
    base, inner_targs = _split_template(components[-1])
    if base in _PASSTHROUGH and depth < _MAX_DEPTH:
        return _functor_of(inner_targs, depth + 1) or base
    return base if _IDENT_RE.fullmatch(base) else ""


def _first_meaningful_argument(targs: str) -> str:
    """The first template argument that is neither a literal, a plain type nor plumbing."""
    for raw in _split_top_level(targs, ","):
        argument = _strip_leading_keywords(raw.strip())
        if not argument or _LITERAL_RE.match(argument):
            continue
        head = _argument_head(argument)
        components = [c.strip() for c in _split_top_level(head, "::") if c.strip()]
        if not components:
            continue
        if components[0] in {"std", "c10"} and len(components) > 1:
            continue
        base = _split_template(components[-1])[0]
        words = base.split()
        if not words or any(w in _PLUMBING for w in words) or _TYPE_PARAM_RE.match(base):
            continue
        if "memory" in components[:-1]:
            continue
        return argument
    return ""


def _argument_head(argument: str) -> str:
    """A template argument up to its own parameter list (drops ``(...)::{lambda...}`` tails)."""
    argument = _strip_leading_keywords(argument.strip())
    cut = _first_top_level(argument, "(")
    return argument[:cut].strip() if cut > 0 else argument


def _strip_leading_keywords(text: str) -> str:
    """Drop ``void``/``const``/``typename``/``struct``/``class`` in front of a type or function."""
    while True:
        for keyword in ("void ", "const ", "typename ", "struct ", "class ", "volatile "):
            if text.startswith(keyword):
                text = text[len(keyword) :].lstrip()
                break
        else:
            return text


def _split_template(component: str) -> tuple[str, str]:
    """``name<args>`` -> (``name``, ``args``); a component without ``<`` -> (component, "")."""
    cut = _first_top_level(component, "<")
    if cut < 0:
        return component.strip(), ""
    close = _matching_close(component, cut)
    inner = component[cut + 1 : close] if close > cut else component[cut + 1 :]
    return component[:cut].strip(), inner


def _bracket_steps(text: str, start: int = 0) -> Iterator[tuple[int, bool, int]]:
    """(index, opens, depth after it) for each bracket of ``text`` from ``start`` that counts.

    ``<>()[]{}`` nest as a stack: a closer only closes the bracket kind on top of it (so
    ``(8)>(0)`` inside a template argument does not end the template), ``->`` is not a closer,
    and an unmatched closer is an ordinary character (not reported). Only the bracket
    characters are visited (a regular expression skips the rest in C): names of 10 kB and more
    cost what a short one does.
    """
    stack: list[str] = []
    for match in _BRACKET.finditer(text, start):
        index = match.start()
        char = text[index]
        if char in _OPENERS:
            stack.append(_OPENERS[char])
            yield index, True, len(stack)
        elif stack and char == stack[-1] and not _is_arrow(text, index):
            stack.pop()
            yield index, False, len(stack)


def _depth_zero_runs(text: str) -> Iterator[tuple[int, int]]:
    """The ``[start, end)`` runs of ``text`` that stand outside all brackets, in order.

    An opener at depth zero ends its run (it is the run's last character); see
    :func:`_bracket_steps` for what nests.
    """
    start = 0
    depth = 0
    for index, opens, depth in _bracket_steps(text):
        if opens and depth == 1:
            yield start, index + 1
        elif not opens and depth == 0:
            start = index + 1
    if depth == 0:
        yield start, len(text)


def _is_arrow(text: str, index: int) -> bool:
    """``text[index]`` is the ``>`` of ``->`` (not a closer)."""
    return text[index] == ">" and index > 0 and text[index - 1] == "-"


def _first_top_level(text: str, char: str) -> int:
    """Index of the first ``char`` outside all brackets, or -1."""
    for start, end in _depth_zero_runs(text):
        found = text.find(char, start, end)
        if found != -1:
            return found
    return -1


def _matching_close(text: str, open_index: int) -> int:
    """Index of the bracket closing the one at ``open_index``, or -1 when it is never closed."""
    for index, opens, depth in _bracket_steps(text, open_index):
        if not opens and depth == 0:
            return index
    return -1


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it starts outside all brackets."""
    parts: list[str] = []
    start = 0
    width = len(separator)
    for run_start, run_end in _depth_zero_runs(text):
        position = max(run_start, start)
        while (found := text.find(separator, position, run_end + width - 1)) != -1:
            parts.append(text[start:found])
            start = position = found + width
    parts.append(text[start:])
    return parts


def _last_top_level_word(head: str) -> str:
    """The last space-separated word outside brackets (drops a leading return type)."""
    words = _split_top_level(head, " ")
    words = [w for w in words if w]
    return words[-1] if words else ""


def _simplify_mangled(text: str) -> str:
    """``_ZN7ck_tile6kentry...`` -> ``ck_tile::Rmsnorm2dFwd``; unparseable -> the text itself."""
    position = 2
    nested = text.startswith("_ZN")
    if nested:
        position = 3
        while position < len(text) and text[position] in "rVKRO":
            position += 1
    names: list[str] = []
    while position < len(text) and text[position].isdigit():
        name, position = _mangled_identifier(text, position)
        if not name:
            break
        names.append(name)
        if not nested:
            break
    if not names:
        return text
    function = names[-1]
    if function in _SHELL_KERNELS:
        inner = _first_mangled_class(text[position:], exclude=set(names))
        if inner:
            function = inner
    library = next((n for n in names[:-1] if n not in _NOISE_NAMESPACES), "")
    return f"{library}::{function}" if library else function


def _first_mangled_class(rest: str, exclude: set[str]) -> str:
    """The class a mangled template argument names (``NS_4conv6kernel23ImplicitGemmConvolution``).

    Finds the first length-prefixed identifier of at least 3 characters, follows the run of
    nested names after it, and returns the last one: the class, not its namespaces.
    """
    for match in _MANGLED_SOURCE_NAME_RE.finditer(rest):
        name, end = _mangled_identifier(rest, match.start())
        if len(name) < 3 or name in exclude:
            continue
        last = name
        while end < len(rest) and rest[end].isdigit():
            following, next_end = _mangled_identifier(rest, end)
            if not following:
                break
            last, end = following, next_end
        return last
    return ""


def _mangled_identifier(text: str, position: int) -> tuple[str, int]:
    """The ``<length><identifier>`` at ``position`` and the index after it, or ("", position)."""
    digits = re.match(r"\d{1,4}", text[position:])
    if digits is None:
        return "", position
    length = int(digits.group(0))
    start = position + len(digits.group(0))
    name = text[start : start + length]
    if length == 0 or len(name) != length or not _IDENT_RE.fullmatch(name):
        return "", position
    return name, start + length


def _cap_length(name: str) -> str:
    """Cut names longer than :data:`MAX_SHORT_NAME` in the middle, keeping head and tail."""
    if len(name) <= MAX_SHORT_NAME:
        return name
    return name[:_KEEP_HEAD] + _ELLIPSIS + name[-_KEEP_TAIL:]
