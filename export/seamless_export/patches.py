"""Export patches: context managers that swap model code for export-friendly equivalents and restore it.

Each replacement computes exactly what the original computes in eager mode (tests/export/test_patches.py checks
this bit for bit); it only changes *how*, so that the traced ONNX graph is correct for every input shape:

- :func:`gather_upsample`: the duration upsampling (``_hard_upsample`` of the text-to-unit model and the inline
  one in the vocoder's forward) as a loop-free cumsum/compare/gather, instead of ``repeat_interleave`` that the
  exporter turns into a Loop giving wrong lengths.
- :func:`computed_positions`: sinusoidal position embeddings computed from the position ids instead of read from
  a fixed table that grows in Python (a data-dependent branch the trace freezes; the table also caps input length).
- :func:`expm1_symbolic`: ``aten::expm1`` as ``Exp - 1`` for the TorchScript-based exporter, which lacks it.
- :func:`clamped_relative_positions`: the speech encoder's relative-position scores from the few distinct clamped
  distances (query × each distance embedding, then a gather) instead of an ``L × L × head`` embedding tensor and
  an einsum over it. Every score is the same dot product; only the summation order of the matrix product may
  differ, so this patch matches the original within float rounding rather than bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from transformers.models.seamless_m4t_v2 import modeling_seamless_m4t_v2 as seamless

logger = logging.getLogger(__name__)

EXPM1_OP = "aten::expm1"
SINUSOID_BASE = 10000.0


@contextlib.contextmanager
def swapped_attribute(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """Set ``owner.name`` to ``replacement`` for the duration of the block, then restore the original."""
    original = owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def upsample_by_durations(hidden_states: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """Repeat step ``t`` of each row ``durations[b, t]`` times along dim 1; rows shorter than the longest are
    zero-padded. Same result as per-row ``repeat_interleave`` followed by ``pad_sequence``."""
    ends = torch.cumsum(durations, dim=1)  # [B, T]
    totals = ends[:, -1]  # [B]
    frames = torch.arange(0, totals.max(), dtype=ends.dtype, device=ends.device)  # [M]
    source = (frames.view(1, -1, 1) >= ends.unsqueeze(1)).sum(dim=-1)  # [B, M]: index of the covering step
    source = source.clamp(max=hidden_states.size(1) - 1)
    trailing = hidden_states.shape[2:]
    index = source.view(*source.shape, *([1] * len(trailing))).expand(*source.shape, *trailing)
    gathered = torch.gather(hidden_states, 1, index)
    valid = (frames.view(1, -1) < totals.view(-1, 1)).view(*source.shape, *([1] * len(trailing)))
    return torch.where(valid, gathered, torch.zeros_like(gathered))


def _hard_upsample(self: Any, hidden_states: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    return upsample_by_durations(hidden_states, durations)


def _vocoder_forward(
    self: seamless.SeamlessM4Tv2CodeHifiGan,
    input_ids: torch.Tensor,
    speaker_id: torch.Tensor,
    lang_id: torch.Tensor,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The vocoder forward with the duration upsampling done by :func:`upsample_by_durations`."""
    units = self.unit_embedding(input_ids)  # B x T x C
    speaker = self.speaker_embedding(speaker_id).transpose(1, 2)
    language = self.language_embedding(lang_id).transpose(1, 2)
    log_durations = self.dur_predictor(units)
    durations = torch.clamp(torch.round(torch.expm1(log_durations)).long(), min=1)
    hidden_states = upsample_by_durations(units, durations).transpose(1, 2)  # B x C x frames
    frames = hidden_states.shape[-1]
    hidden_states = torch.cat([language.repeat(1, 1, frames), hidden_states, speaker.repeat(1, 1, frames)], dim=1)
    waveform = self.hifi_gan(hidden_states)
    unit_lengths = self._get_dur_output_lengths(input_ids, durations)
    return waveform, self._get_output_hifigan_lengths(unit_lengths)


@contextlib.contextmanager
def gather_upsample() -> Iterator[None]:
    """Loop-free duration upsampling in the text-to-unit decoder and in the vocoder."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(swapped_attribute(seamless.SeamlessM4Tv2PreTrainedModel, "_hard_upsample", _hard_upsample))
        stack.enter_context(swapped_attribute(seamless.SeamlessM4Tv2CodeHifiGan, "forward", _vocoder_forward))
        yield


def sinusoidal_rows(position_ids: torch.Tensor, embedding_dim: int, padding_idx: int | None) -> torch.Tensor:
    """Rows of the sinusoidal table for ``position_ids`` (any shape), computed directly."""
    half_dim = embedding_dim // 2
    step = math.log(SINUSOID_BASE) / (half_dim - 1)
    frequencies = torch.exp(torch.arange(half_dim, dtype=torch.int64, device=position_ids.device).float() * -step)
    angles = position_ids.float().unsqueeze(-1) * frequencies
    rows = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if embedding_dim % 2 == 1:
        rows = torch.cat([rows, torch.zeros_like(rows[..., :1])], dim=-1)
    if padding_idx is not None:
        rows = torch.where((position_ids == padding_idx).unsqueeze(-1), torch.zeros_like(rows), rows)
    return rows


@torch.no_grad()
def _positions_forward(
    self: seamless.SeamlessM4Tv2SinusoidalPositionalEmbedding,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    past_key_values_length: int = 0,
) -> torch.Tensor:
    if input_ids is not None:
        position_ids = self.create_position_ids_from_input_ids(input_ids, self.padding_idx, past_key_values_length)
    else:
        position_ids = self.create_position_ids_from_inputs_embeds(
            inputs_embeds, past_key_values_length, self.padding_idx
        )
    return sinusoidal_rows(position_ids, self.embedding_dim, self.padding_idx).to(self.weights.dtype)


@contextlib.contextmanager
def computed_positions() -> Iterator[None]:
    """Sinusoidal position embeddings computed on the fly (no table, no length limit)."""
    with swapped_attribute(seamless.SeamlessM4Tv2SinusoidalPositionalEmbedding, "forward", _positions_forward):
        yield


def _expm1(graph: Any, value: Any) -> Any:
    one = graph.op("Constant", value_t=torch.tensor(1.0, dtype=torch.float32))
    return graph.op("Sub", graph.op("Exp", value), one)


@contextlib.contextmanager
def expm1_symbolic(opset: int) -> Iterator[None]:
    """Register ``aten::expm1`` as ``Exp - 1`` for the TorchScript-based exporter at ``opset``."""
    from torch.onnx._internal.torchscript_exporter import registration

    known_before = EXPM1_OP in registration.registry.all_functions()
    torch.onnx.register_custom_op_symbolic(EXPM1_OP, _expm1, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic(EXPM1_OP, opset)
        if not known_before:
            # Unregistering leaves an empty entry that breaks the exporter's "unsupported operator" report.
            registration.registry._registry.pop(EXPM1_OP, None)


def relative_position_scores(query: torch.Tensor, table: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``einsum("bhld,lrd->bhlr", query, table[clamp(r - l, -left, right) + left])`` without the L×L×d tensor."""
    batch, heads, length, _ = query.shape
    per_distance = torch.matmul(query, table.t()).reshape(batch, heads, -1)  # [B, H, L * distances]
    positions = torch.arange(length, dtype=torch.long, device=query.device)
    distance = torch.clamp(positions.view(1, -1) - positions.view(-1, 1), -left, right) + left  # [L, L]
    flat_index = positions.view(-1, 1) * table.size(0) + distance
    return per_distance[:, :, flat_index.reshape(-1)].reshape(batch, heads, length, length)


def _conformer_attention_forward(
    self: seamless.SeamlessM4Tv2ConformerSelfAttention,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The conformer self-attention forward with :func:`relative_position_scores` for the position bias."""
    batch_size, sequence_length, _ = hidden_states.size()
    query, key, value = (
        projection(hidden_states).view(batch_size, -1, self.num_heads, self.head_size).transpose(1, 2)
        for projection in (self.linear_q, self.linear_k, self.linear_v)
    )
    position_bias = None
    if self.position_embeddings_type == "relative_key":
        table = self.distance_embedding.weight.to(dtype=query.dtype)
        scores = relative_position_scores(query, table, self.left_max_position_embeddings,
                                          self.right_max_position_embeddings)
        position_bias = scores / math.sqrt(self.head_size)
    attention_interface = seamless.ALL_ATTENTION_FUNCTIONS.get_interface(
        self.config._attn_implementation, seamless.eager_attention_forward
    )
    attn_output, attn_weights = attention_interface(
        self, query, key, value, attention_mask, dropout=0.0 if not self.training else self.dropout.p,
        scaling=self.scaling, position_bias=position_bias, **kwargs,
    )
    attn_output = attn_output.reshape(batch_size, sequence_length, -1)
    return self.linear_out(attn_output), attn_weights


@contextlib.contextmanager
def clamped_relative_positions() -> Iterator[None]:
    """Relative-position scores of the speech encoder computed per clamped distance."""
    with swapped_attribute(seamless.SeamlessM4Tv2ConformerSelfAttention, "forward", _conformer_attention_forward):
        yield


PATCHES: dict[str, Callable[[int], contextlib.AbstractContextManager[None]]] = {
    "gather_upsample": lambda opset: gather_upsample(),
    "computed_positions": lambda opset: computed_positions(),
    "expm1_symbolic": expm1_symbolic,
    "clamped_relative_positions": lambda opset: clamped_relative_positions(),
}


@contextlib.contextmanager
def export_patches(opset: int) -> Iterator[None]:
    """Every patch the export needs, applied together."""
    with contextlib.ExitStack() as stack:
        for name, patch in PATCHES.items():
            stack.enter_context(patch(opset))
            logger.debug("export patch %s applied", name)
        yield
