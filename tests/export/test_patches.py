"""Export patches compute exactly what the original code computes, and restore it on exit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from seamless_export.components import T2U, VERIFY_SHAPE, VOCODER, ModelDims
from seamless_export.patches import clamped_relative_positions, computed_positions, expm1_symbolic, gather_upsample
from transformers import SeamlessM4Tv2ForSpeechToSpeech
from transformers.models.seamless_m4t_v2 import modeling_seamless_m4t_v2 as seamless

OPSET = 17


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> SeamlessM4Tv2ForSpeechToSpeech:
    return SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(tiny_checkpoint).eval()


def _run(spec, model: SeamlessM4Tv2ForSpeechToSpeech, batch: int) -> tuple[torch.Tensor, ...]:
    dims = ModelDims.from_config(model.config)
    shape = VERIFY_SHAPE.__class__(**{**VERIFY_SHAPE.__dict__, "batch": batch})
    inputs = spec.make_inputs(dims, shape, torch.Generator().manual_seed(7))
    with torch.no_grad():
        return spec.build(model).eval()(*(inputs[name] for name in spec.input_names(dims)))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("spec", [T2U, VOCODER], ids=lambda s: s.role)
def test_gather_upsample_is_identical_in_eager(model, spec, batch: int) -> None:
    original = _run(spec, model, batch)
    with gather_upsample():
        patched = _run(spec, model, batch)
    for want, got in zip(original, patched):
        assert torch.equal(want, got)


def test_gather_upsample_restores_the_original() -> None:
    hard_upsample = seamless.SeamlessM4Tv2PreTrainedModel._hard_upsample
    vocoder_forward = seamless.SeamlessM4Tv2CodeHifiGan.forward
    with gather_upsample():
        assert seamless.SeamlessM4Tv2CodeHifiGan.forward is not vocoder_forward
        assert seamless.SeamlessM4Tv2PreTrainedModel._hard_upsample is not hard_upsample
    assert seamless.SeamlessM4Tv2CodeHifiGan.forward is vocoder_forward
    assert seamless.SeamlessM4Tv2PreTrainedModel._hard_upsample is hard_upsample


def test_computed_positions_are_identical_in_eager(model) -> None:
    ids = torch.tensor([[3, 120, 17, 44, 9, 3], [3, 121, 8, 3, 0, 0]])
    embed = model.text_decoder.embed_positions
    long_ids = torch.randint(4, 100, (1, embed.weights.size(0) + 5), generator=torch.Generator().manual_seed(3))
    hidden = torch.randn(2, 9, model.config.hidden_size)
    cases = [dict(input_ids=ids), dict(input_ids=ids[:, :1], past_key_values_length=5), dict(inputs_embeds=hidden)]
    cases.append(dict(input_ids=long_ids))  # longer than the table: the original grows it
    originals = [embed(**case) for case in cases]
    forward = seamless.SeamlessM4Tv2SinusoidalPositionalEmbedding.forward
    with computed_positions():
        patched = [embed(**case) for case in cases]
        assert seamless.SeamlessM4Tv2SinusoidalPositionalEmbedding.forward is not forward
    assert seamless.SeamlessM4Tv2SinusoidalPositionalEmbedding.forward is forward
    for want, got in zip(originals, patched):
        assert torch.equal(want, got)


class _Expm1(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.expm1(x)


def _export_expm1(path: Path) -> None:
    torch.onnx.export(_Expm1(), (torch.randn(3, 4),), str(path), opset_version=OPSET, dynamo=False)


def test_expm1_symbolic_exports_and_is_removed_on_exit(tmp_path: Path) -> None:
    x = torch.linspace(-3, 3, 12).reshape(3, 4)
    with expm1_symbolic(OPSET):
        _export_expm1(tmp_path / "expm1.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "expm1.onnx"))
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(got, torch.expm1(x).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(Exception, match="expm1"):
        _export_expm1(tmp_path / "again.onnx")


@pytest.mark.parametrize("frames", [48, 250])  # 250 feature frames: distances beyond both clamps
def test_clamped_relative_positions_match_in_eager(model, frames: int) -> None:
    features = torch.randn(2, frames, 160, generator=torch.Generator().manual_seed(5))
    mask = torch.ones(2, frames, dtype=torch.long)
    mask[1, frames // 2 :] = 0
    forward = seamless.SeamlessM4Tv2ConformerSelfAttention.forward
    with torch.no_grad():
        want = model.speech_encoder(input_features=features, attention_mask=mask)[0]
        with clamped_relative_positions():
            assert seamless.SeamlessM4Tv2ConformerSelfAttention.forward is not forward
            got = model.speech_encoder(input_features=features, attention_mask=mask)[0]
    assert seamless.SeamlessM4Tv2ConformerSelfAttention.forward is forward
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
