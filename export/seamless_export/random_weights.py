"""Random weights: the shaping every preset gets, and a streamed build for checkpoints too large for memory.

Shaping (:class:`seamless_export.presets.WeightShaping`) is a set of rules on stored tensors, matched by name;
tied weights (the text embedding and lm_head, the t2u embedding and lm_head) are one stored tensor under several
names and are shaped once.

The streamed build never holds the model: it builds it on the meta device (shapes only), then for each stored
tensor in turn allocates it, fills it from a generator seeded by the checkpoint seed and the tensor's name,
shapes it, appends its bytes to model.safetensors and frees it. Peak memory is about one tensor (the 1 GB text
embedding at the released size). The initialisation is plain and cheap, close to transformers' own: normal
weights (std ``initializer_range`` for linear and embedding layers, He for convolutions), zero biases, unit
layer norms and position scales. Seeding per tensor makes the first layers of a ``--layers N`` checkpoint equal
to those of the full one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel, SeamlessM4Tv2Config

from seamless_export.presets import WeightShaping

WEIGHTS_FILE = "model.safetensors"
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
SAFETENSORS_ALIGNMENT = 8  # the header is padded with spaces so tensor data starts 8-byte aligned
HEADER_LENGTH_FORMAT = "<Q"  # little-endian u64 byte count of the JSON header
SEED_BYTES = 8

TEXT_EMBEDDING = "shared.weight"
TEXT_DECODER_FINAL_NORM = "text_decoder.layer_norm"
PINNED_DIMENSION = -1  # the hidden dimension that carries the eos logit offset (WeightShaping.eos_logit_offset)
PINNED_VALUE = 1.0
T2U_LM_HEAD = "t2u_model.lm_head.weight"
CROSS_ATTENTION_VALUE_OUTPUT = re.compile(r"text_decoder\.layers\.\d+\.cross_attention\.(v_proj|out_proj)\.weight")
CROSS_ATTENTION_QUERY_KEY = re.compile(r"text_decoder\.layers\.\d+\.cross_attention\.(q_proj|k_proj)\.weight")
DURATION_PROJECTIONS = ("t2u_model.model.decoder.duration_predictor.proj", "vocoder.dur_predictor.proj")
UNIT_SCALE_PARAMETERS = ("pos_emb_alpha", "pos_emb_alpha_char")  # t2u position scales, 1 in transformers' init
CONVOLUTIONS = (nn.Conv1d, nn.ConvTranspose1d)
HE_GAIN_SQUARED = 2.0  # He (kaiming) normal init: std = sqrt(2 / fan_in)


@dataclass(frozen=True)
class StoredTensor:
    """One tensor of the checkpoint file: its key, every state-dict name it has, and its owning module."""

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: torch.dtype
    owner: nn.Module

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * torch.empty((), dtype=self.dtype).element_size()


@dataclass(frozen=True)
class ShapingPlan:
    """What the shaping rules need: the preset's WeightShaping and the ids they touch.

    ``voiced_units``: the t2u ids the vocoder has an embedding for (from ``vocoder_offset``); every other row of
    the t2u lm_head is zeroed so greedy decoding never picks a control, language or out-of-range unit.
    """

    shaping: WeightShaping
    eos_id: int
    voiced_units: range


@dataclass(frozen=True)
class StreamedWeights:
    path: Path
    num_parameters: int
    num_bytes: int


def stored_tensors(model: nn.Module) -> list[StoredTensor]:
    """The model's state dict with tied tensors merged, keyed by their first name (as save_pretrained keeps)."""
    groups: dict[int, list[str]] = {}
    tensors: dict[int, torch.Tensor] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
        tensors[id(tensor)] = tensor
    stored = []
    for key, names in groups.items():
        tensor = tensors[key]
        owner = model.get_submodule(names[0].rpartition(".")[0])
        stored.append(StoredTensor(names[0], tuple(names), tuple(tensor.shape), tensor.dtype, owner))
    return stored


def shape_tensor(stored: StoredTensor, tensor: torch.Tensor, plan: ShapingPlan, generator: torch.Generator) -> None:
    """Apply every shaping rule that matches one of the tensor's names (see WeightShaping)."""
    shaping, names = plan.shaping, stored.aliases
    with torch.no_grad():
        if TEXT_EMBEDDING in names:
            _shape_text_embedding(tensor, shaping, plan.eos_id)
        if shaping.eos_logit_offset is not None and stored.name.startswith(f"{TEXT_DECODER_FINAL_NORM}."):
            tensor[PINNED_DIMENSION] = PINNED_VALUE if stored.name.endswith(".bias") else 0.0
        if T2U_LM_HEAD in names:
            tensor[: plan.voiced_units.start] = 0.0
            tensor[plan.voiced_units.stop :] = 0.0
        if any(CROSS_ATTENTION_VALUE_OUTPUT.fullmatch(name) for name in names):
            tensor *= shaping.cross_attention_gain
        if any(CROSS_ATTENTION_QUERY_KEY.fullmatch(name) for name in names):
            tensor *= shaping.cross_attention_query_key_gain
        if stored.name in {f"{prefix}.weight" for prefix in DURATION_PROJECTIONS}:
            fan_in = stored.shape[1]
            std = shaping.duration_std / math.sqrt(fan_in)
            tensor.copy_(torch.randn(stored.shape, generator=generator) * std)
        if stored.name in {f"{prefix}.bias" for prefix in DURATION_PROJECTIONS}:
            tensor.fill_(shaping.duration_bias)


def _shape_text_embedding(tensor: torch.Tensor, shaping: WeightShaping, eos_id: int) -> None:
    tensor[eos_id] *= shaping.eos_row_scale
    if shaping.eos_logit_offset is not None:
        tensor[:, PINNED_DIMENSION] = 0.0
        tensor[eos_id, PINNED_DIMENSION] = shaping.eos_logit_offset / PINNED_VALUE


def shape_model(model: nn.Module, plan: ShapingPlan, generator: torch.Generator) -> None:
    """Shape an initialised in-memory model, tensor by tensor in state-dict order."""
    state = model.state_dict(keep_vars=True)
    for stored in stored_tensors(model):
        shape_tensor(stored, state[stored.name], plan, generator)


def tensor_seed(seed: int, name: str) -> int:
    """A 64-bit generator seed of the checkpoint seed and the tensor name."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:SEED_BYTES], "little")


def initial_tensor(stored: StoredTensor, init_std: float, generator: torch.Generator) -> torch.Tensor:
    """A freshly initialised tensor for ``stored``; raises ValueError for a kind of tensor it does not know."""
    tensor = torch.empty(stored.shape, dtype=stored.dtype)
    kind = stored.name.rpartition(".")[2]
    owner = stored.owner
    if kind == "bias":
        return tensor.zero_()
    if isinstance(owner, nn.LayerNorm) or kind in UNIT_SCALE_PARAMETERS:
        return tensor.fill_(1.0)
    if isinstance(owner, nn.Linear):
        return tensor.normal_(0.0, init_std, generator=generator)
    if isinstance(owner, nn.Embedding):
        tensor.normal_(0.0, init_std, generator=generator)
        if owner.padding_idx is not None:
            tensor[owner.padding_idx] = 0.0
        return tensor
    if isinstance(owner, CONVOLUTIONS):
        fan_in = math.prod(stored.shape[1:])
        return tensor.normal_(0.0, math.sqrt(HE_GAIN_SQUARED / fan_in), generator=generator)
    raise ValueError(f"no initialisation rule for {stored.name} ({type(owner).__name__})")


def safetensors_header(tensors: Sequence[StoredTensor]) -> bytes:
    """The safetensors header for ``tensors`` stored back to back in this order."""
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for stored in tensors:
        if stored.dtype not in SAFETENSORS_DTYPES:
            raise ValueError(f"{stored.name}: dtype {stored.dtype} has no safetensors name here")
        end = offset + stored.nbytes
        entries[stored.name] = {
            "dtype": SAFETENSORS_DTYPES[stored.dtype],
            "shape": list(stored.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % SAFETENSORS_ALIGNMENT)
    return struct.pack(HEADER_LENGTH_FORMAT, len(header)) + header


def _write_tensors(path: Path, tensors: Iterable[StoredTensor], plan: ShapingPlan, seed: int, init_std: float) -> int:
    ordered = sorted(tensors, key=lambda stored: stored.name)
    written = 0
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as out:
        written += out.write(safetensors_header(ordered))
        for stored in ordered:
            generator = torch.Generator().manual_seed(tensor_seed(seed, stored.name))
            tensor = initial_tensor(stored, init_std, generator)
            shape_tensor(stored, tensor, plan, generator)
            written += out.write(tensor.contiguous().view(torch.uint8).numpy().data)
            del tensor
    partial.replace(path)
    return written


def write_streamed_weights(
    directory: Path, model_class: type[PreTrainedModel], config: SeamlessM4Tv2Config, plan: ShapingPlan, seed: int
) -> StreamedWeights:
    """Write ``model_class(config)``'s weights, seeded per tensor and shaped, without building the model."""
    with torch.device("meta"):
        model = model_class(config)
    num_parameters = sum(param.numel() for param in model.parameters())
    path = Path(directory) / WEIGHTS_FILE
    written = _write_tensors(path, stored_tensors(model), plan, seed, config.initializer_range)
    return StreamedWeights(path, num_parameters, written)
