"""The scenario (batch, prompt length, decode context) read from the trace itself (methodology §2).

Why: a theory run for the wrong scenario is worse than none — ``--batch 32`` on a batch-1 trace
makes every decode operator look healthy. The trace records what ran:

1. **token copies** (vLLM-style engines): each engine step copies the step's token ids (int32,
   4 B per token) and then their positions (int64, 8 B per token) to the GPU, and copies the
   sampled token ids (int32, 4 B per sequence) back. Steps are cut at those device-to-host
   copies; a host-to-device copy of 4·T bytes followed in the same step by one of 8·T bytes
   gives the step's T tokens, the device-to-host copy after it the batch B. A step with T > B
   is a prefill (prompt S = T / B); T == B is a decode step (one token per sequence).
2. **operator input shapes** (Kineto ``Input Dims``, ``record_shapes=True``): the embedding
   lookup's index tensor is ``B×S`` (HF transformers) or ``T`` (flattened engines); SDPA /
   flash-attention inputs are ``B×H×S×d`` (or ``B×S×H×d``).
3. **attention kernel grids**: FlashAttention-2 forward kernels (``flash_fwd_kernel``, PyTorch's
   ``pytorch_flash::``) launch ``grid = (⌈S_q/block⌉, B, H)``: grid y is the batch.

Each field gets a value, a confidence (high: two independent sources agree; medium: one clear
source; low: a guess from a partial signal) and the evidence. The function is pure: it reads the
trace and returns a typed :class:`ScenarioInference`, which theory uses when the user gave no
scenario and checks the user's scenario against when they did.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from infersight.model import Trace

Confidence = Literal["high", "medium", "low", "none"]
TOKEN_ID_BYTES = 4  # int32 token ids (vLLM input_ids, sampled_token_ids)
POSITION_BYTES = 8  # int64 positions
EMBEDDING_OPS = re.compile(r"^aten::embedding$")
ATTENTION_OPS = re.compile(
    r"^aten::(_scaled_dot_product_flash_attention|scaled_dot_product_attention|_flash_attention_forward"
    r"|_scaled_dot_product_efficient_attention)$"
)
FA2_FORWARD_KERNEL = re.compile(r"flash_fwd_kernel|flash::flash_fwd", re.IGNORECASE)
FA2_EXCLUDED = re.compile(r"splitkv|combine|bwd", re.IGNORECASE)
_DIMS = re.compile(r"\d+(?:x\d+)*|-")


class FieldInference(BaseModel):
    """One scenario figure read from the trace."""

    value: int | None = Field(description="the inferred figure; None when the trace does not tell")
    confidence: Confidence
    evidence: list[str] = Field(default_factory=list, description="what in the trace says so")


class StepTokens(BaseModel):
    """One engine step seen through its copies: tokens in, sequences sampled."""

    index: int
    start_ns: int
    tokens: int
    batch: int | None
    phase: Literal["prefill", "decode", "mixed"]


class ScenarioInference(BaseModel):
    """Batch, prompt and decode context as the trace shows them, with confidence and evidence."""

    batch: FieldInference
    prompt: FieldInference
    context: FieldInference
    prefill_steps: int = Field(description="engine steps that prefilled prompts (0: none seen)")
    decode_steps: int = Field(description="engine steps that decoded one token per sequence")
    steps: list[StepTokens] = Field(default_factory=list, description="per-step token counts (copy method)")
    method: str = Field(description="token copies, operator input shapes, kernel grids, or none")
    notes: list[str] = Field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Batch and prompt are both known (enough to run the theory)."""
        return self.batch.value is not None and self.prompt.value is not None


NONE = FieldInference(value=None, confidence="none", evidence=[])


def infer_scenario(traces: Sequence[Trace]) -> ScenarioInference:
    """The scenario of the first trace that tells it (ranks of one TP group run the same one)."""
    results = [_infer_one(trace) for trace in traces]
    for result in results:
        if result.usable:
            return result
    return results[0] if results else _nothing("no trace")


def _infer_one(trace: Trace) -> ScenarioInference:
    copies = _from_copies(trace)
    shapes = _from_shapes(trace)
    grid_batch = _batch_from_grids(trace)
    primary = copies if copies is not None and copies.usable else shapes
    if primary is None:
        result = _nothing("no token-id copies, no Input Dims on embedding/attention operators")
        if grid_batch is not None:
            value, evidence = grid_batch
            result = result.model_copy(
                update={"batch": FieldInference(value=value, confidence="low", evidence=[evidence])}
            )
        return result
    return _corroborate(
        primary,
        [other for other in (copies, shapes) if other is not None and other is not primary],
        grid_batch,
    )


def _nothing(reason: str) -> ScenarioInference:
    return ScenarioInference(
        batch=NONE, prompt=NONE, context=NONE, prefill_steps=0, decode_steps=0, method="none", notes=[reason]
    )


def _corroborate(
    primary: ScenarioInference, others: list[ScenarioInference], grid_batch: tuple[int, str] | None
) -> ScenarioInference:
    """Raise a field's confidence to high when a second source gives the same value; note conflicts."""
    fields = {"batch": primary.batch, "prompt": primary.prompt, "context": primary.context}
    notes = list(primary.notes)
    for other in others:
        for key, field in fields.items():
            second = getattr(other, key)
            if field.value is None or second.value is None:
                continue
            if second.value == field.value:
                fields[key] = field.model_copy(
                    update={"confidence": "high", "evidence": [*field.evidence, *second.evidence]}
                )
            else:
                notes.append(f"{key}: {other.method} gives {second.value}, {primary.method} {field.value}")
    if grid_batch is not None and fields["batch"].value is not None:
        value, evidence = grid_batch
        if value == fields["batch"].value:
            batch = fields["batch"]
            fields["batch"] = batch.model_copy(
                update={"confidence": "high", "evidence": [*batch.evidence, evidence]}
            )
        else:
            notes.append(f"batch: attention kernel grid gives {value} ({evidence})")
    return primary.model_copy(update={**fields, "notes": notes})


# ---------------------------------------------------------------- 1. token-id copies


@dataclass(frozen=True)
class _Copy:
    start: int
    bytes: int
    kind: str


def _from_copies(trace: Trace) -> ScenarioInference | None:
    """Token ids (4·T) + positions (8·T) host-to-device per step, sampled ids (4·B) back."""
    memcpy = trace.memcpy
    if memcpy.empty:
        return None
    ordered = memcpy.sort_values("start", kind="stable")
    copies = [
        _Copy(int(start), int(size), str(kind))
        for start, size, kind in zip(ordered["start"], ordered["bytes"], ordered["kind"], strict=True)
    ]
    steps: list[StepTokens] = []
    current: list[_Copy] = []
    for copy in copies:
        if copy.kind == "DtoH":
            step = _step(len(steps), current, copy)
            if step is not None:
                steps.append(step)
            current = []
        elif copy.kind == "HtoD":
            current.append(copy)
    if not steps:
        return None
    return _scenario_from_steps(steps)


def _step(index: int, uploads: list[_Copy], download: _Copy) -> StepTokens | None:
    """The step's tokens: the first upload of 4·T bytes followed by one of 8·T bytes."""
    for i, first in enumerate(uploads):
        if first.bytes <= 0 or first.bytes % TOKEN_ID_BYTES:
            continue
        tokens = first.bytes // TOKEN_ID_BYTES
        if any(later.bytes == tokens * POSITION_BYTES for later in uploads[i + 1 :]):
            batch = download.bytes // TOKEN_ID_BYTES if download.bytes % TOKEN_ID_BYTES == 0 else None
            if batch is not None and (batch <= 0 or batch > tokens):
                batch = None
            phase: Literal["prefill", "decode", "mixed"] = (
                "decode" if batch == tokens else ("prefill" if batch is not None else "mixed")
            )
            return StepTokens(index=index, start_ns=first.start, tokens=tokens, batch=batch, phase=phase)
    return None


def _scenario_from_steps(steps: list[StepTokens]) -> ScenarioInference:
    prefills = [s for s in steps if s.phase == "prefill"]
    decodes = [s for s in steps if s.phase == "decode"]
    evidence_steps = f"{len(steps)} engine step(s) cut at the device-to-host copies of sampled token ids"
    batch, prompt, context = NONE, NONE, NONE
    if prefills:
        first = prefills[0]
        assert first.batch is not None
        batch = FieldInference(
            value=first.batch,
            confidence="medium",
            evidence=[
                f"prefill step {first.index}: {first.batch * TOKEN_ID_BYTES} B of sampled int32 token ids "
                f"copied back = {first.batch} sequence(s)"
            ],
        )
        per_seq, rest = divmod(first.tokens, first.batch)
        prompt = FieldInference(
            value=per_seq,
            confidence="medium" if rest == 0 else "low",
            evidence=[
                f"prefill step {first.index}: {first.tokens * TOKEN_ID_BYTES:,} B of int32 token ids and "
                f"{first.tokens * POSITION_BYTES:,} B of int64 positions copied in = {first.tokens:,} tokens"
                + (f" / {first.batch} sequences" if first.batch > 1 else " (one sequence)")
                + (
                    ""
                    if rest == 0
                    else f"; not a multiple of the batch: mean {first.tokens / first.batch:.1f}"
                )
            ],
        )
    if decodes:
        sizes = sorted({s.batch for s in decodes if s.batch is not None})
        decode_batch = FieldInference(
            value=max(sizes),
            confidence="medium",
            evidence=[
                f"{len(decodes)} decode step(s): "
                f"{', '.join(str(b * TOKEN_ID_BYTES) for b in sizes)} B of int32 "
                f"token ids in and out per step = batch {', '.join(map(str, sizes))}"
            ],
        )
        if batch.value is None:
            batch = decode_batch
        elif decode_batch.value == batch.value:
            batch = batch.model_copy(
                update={"confidence": "high", "evidence": [*batch.evidence, *decode_batch.evidence]}
            )
        else:
            batch = batch.model_copy(update={"evidence": [*batch.evidence, *decode_batch.evidence]})
        if prompt.value is not None:
            # the k-th decode step after the prefill attends to S + k tokens
            contexts = [prompt.value + k for k in range(1, len(decodes) + 1)]
            mean = round(sum(contexts) / len(contexts))
            context = FieldInference(
                value=mean,
                confidence=prompt.confidence,
                evidence=[
                    f"decode steps 1..{len(decodes)} after a {prompt.value}-token prompt attend to "
                    f"{contexts[0]}..{contexts[-1]} tokens: mean {mean}"
                ],
            )
    return ScenarioInference(
        batch=batch,
        prompt=prompt,
        context=context,
        prefill_steps=len(prefills),
        decode_steps=len(decodes),
        steps=steps,
        method="token copies",
        notes=[evidence_steps],
    )


# ---------------------------------------------------------------- 2. operator input shapes


def _from_shapes(trace: Trace) -> ScenarioInference | None:
    """Embedding indices ``B×S`` (or flattened ``T``) and attention inputs ``B×H×S×d``."""
    ranges = trace.ranges
    if ranges.empty or "input_dims" not in ranges.columns:
        return None
    names = ranges["name"].astype(str)
    wanted = names.str.match(EMBEDDING_OPS) | names.str.match(ATTENTION_OPS)  # only these rows are read
    rows = list(
        zip(
            ranges.loc[wanted, "start"].astype("int64").tolist(),
            names[wanted].tolist(),
            ranges.loc[wanted, "input_dims"].astype(str).tolist(),
            strict=True,
        )
    )
    embedding = sorted((start, dims) for start, name, dims in rows if dims and EMBEDDING_OPS.match(name))
    attention = sorted(
        (start, name, dims) for start, name, dims in rows if dims and ATTENTION_OPS.match(name)
    )
    passes = [shape for shape in (_shape(dims, 1) for _, dims in embedding) if shape is not None]
    if not passes and not attention:
        return None
    batch, prompt, context = NONE, NONE, NONE
    prefill, decode = 0, 0
    if passes and len(passes[0]) == 2:
        b, s = passes[0]
        batch = _field(b, "medium", f"aten::embedding indices {b}x{s}: batch {b}")
        prompt = _field(s, "medium", f"aten::embedding indices {b}x{s}: {s} tokens per sequence")
        later = [shape for shape in passes[1:] if len(shape) == 2 and shape[1] == 1]
        prefill, decode = 1, len(later)
        if later:
            contexts = [s + k for k in range(1, len(later) + 1)]
            mean = round(sum(contexts) / len(contexts))
            context = _field(
                mean,
                "medium",
                f"{len(later)} later embedding call(s) of {b}x1 (decode): "
                f"contexts {contexts[0]}..{contexts[-1]}, mean {mean}",
            )
    elif passes:
        prompt = FieldInference(
            value=None,
            confidence="none",
            evidence=[
                f"aten::embedding indices flattened to {passes[0][0]} tokens: batch × prompt not separable"
            ],
        )
    if attention:
        batch, prompt = _check_attention(attention[0][1], attention[0][2], batch, prompt)
    return ScenarioInference(
        batch=batch,
        prompt=prompt,
        context=context,
        prefill_steps=prefill,
        decode_steps=decode,
        method="operator input shapes",
        notes=[f"{len(passes)} embedding call(s) and {len(attention)} attention operator(s) with Input Dims"],
    )


def _field(value: int, confidence: Confidence, evidence: str) -> FieldInference:
    return FieldInference(value=value, confidence=confidence, evidence=[evidence])


def _check_attention(
    name: str, dims: str, batch: FieldInference, prompt: FieldInference
) -> tuple[FieldInference, FieldInference]:
    """The first attention operator's query (B×H×S×d or B×S×H×d) confirms or supplies the batch."""
    q = _shape(dims, 0)
    if q is None or len(q) != 4:
        return batch, prompt
    text = f"{name} query {'x'.join(map(str, q))}"
    if batch.value is None:
        return _field(q[0], "low", f"{text}: batch {q[0]}"), prompt
    if q[0] == batch.value and prompt.value in (q[1], q[2]):
        batch = batch.model_copy(update={"confidence": "high", "evidence": [*batch.evidence, text]})
        prompt = prompt.model_copy(update={"confidence": "high", "evidence": [*prompt.evidence, text]})
    return batch, prompt


def _shape(text: str, position: int) -> tuple[int, ...] | None:
    """The ``position``-th input's dims of an ``Input Dims`` text ("[151936x1024, 16x559, -]")."""
    parts = [part.strip() for part in text.strip().strip("[]").split(",")]
    if position >= len(parts) or not _DIMS.fullmatch(parts[position]) or parts[position] == "-":
        return None
    return tuple(int(v) for v in parts[position].split("x"))


# ---------------------------------------------------------------- 3. attention kernel grids


def _batch_from_grids(trace: Trace) -> tuple[int, str] | None:
    """FlashAttention-2 forward grids (⌈S_q/block⌉, B, H): the most common grid y is the batch."""
    kernels = trace.kernels
    if kernels.empty or "grid_y" not in kernels.columns:
        return None
    names = kernels["name"].astype(str)
    mask = names.str.contains(FA2_FORWARD_KERNEL) & ~names.str.contains(FA2_EXCLUDED)
    if not mask.any():
        return None
    grid_y = [int(y) for y in kernels.loc[mask, "grid_y"].tolist() if int(y) > 0]
    if not grid_y:
        return None
    value = Counter(grid_y).most_common(1)[0][0]
    return (
        value,
        f"{int(mask.sum())} FlashAttention-2 forward kernel(s) with grid y = {value} "
        "(grid = (S_q blocks, B, heads))",
    )
