"""The default dtype per machine, and quantized loading: what is quantized, how close it stays, what is refused."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from lco_embedding import LCOEmbedder
from lco_embedding.model.quantization import (
    QUANTIZATIONS,
    check_quantization,
    cpu_has_native_bf16,
    default_dtype,
    stored_dtype,
)
from lco_embedding.testing import build_tiny_checkpoint

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def test_auto_dtype_per_machine_and_checkpoint():
    bf16, f32 = torch.bfloat16, torch.float32
    assert default_dtype(CUDA, f32) == bf16 and default_dtype(CUDA, None) == bf16
    assert default_dtype(CPU, bf16, native_bf16=True) == bf16  # the LCO checkpoints on a modern CPU
    assert default_dtype(CPU, bf16, native_bf16=False) == f32  # emulated bf16 would be slow
    assert default_dtype(CPU, f32, native_bf16=True) == f32  # a float32 checkpoint stays float32
    assert default_dtype(CPU, None, native_bf16=True) == f32
    assert default_dtype(MPS, bf16, native_bf16=True) == f32
    assert isinstance(cpu_has_native_bf16(), bool)


def test_stored_dtype_from_config():
    assert stored_dtype({"dtype": "bfloat16"}) == torch.bfloat16
    assert stored_dtype({"torch_dtype": "float32"}) == torch.float32
    assert stored_dtype({"thinker_config": {"torch_dtype": "bfloat16"}}) == torch.bfloat16
    assert stored_dtype({"dtype": "nonsense"}) is None and stored_dtype({}) is None


def test_a_bfloat16_checkpoint_loads_as_this_cpu_allows(tmp_path, tiny_omni):
    folder = build_tiny_checkpoint(tmp_path / "bf16", dtype="bfloat16")
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert LCOEmbedder(str(folder), device="cpu").dtype == expected
    assert LCOEmbedder(tiny_omni, device="cpu").dtype == torch.float32  # saved in float32
    assert LCOEmbedder(str(folder), device="cpu", dtype="float32").dtype == torch.float32  # asked for
    # The low-memory build (meta device, weights drawn a tensor at a time into shards) loads the same way.
    streamed = build_tiny_checkpoint(tmp_path / "streamed", dtype="bfloat16", low_memory=True)
    assert (streamed / "model.safetensors.index.json").is_file()
    model = LCOEmbedder(str(streamed), device="cpu")
    assert model.dtype == expected and np.isfinite(model.encode(["a cat on a mat", "a dog"])).all()


def _linears(model: torch.nn.Module) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            part = name.split(".")[1] if name.startswith("model.") else name
            kinds.setdefault(part, []).append(type(module.weight).__name__)
    return kinds


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="needs torchao ([quantization])")
@pytest.mark.parametrize("quantization", ["int8", "int8-dynamic"])
def test_int8_quantizes_every_linear_layer_and_stays_close(tmp_path, media, quantization):
    # Weights of a trained model's scale (std 0.02), where rounding behaves as it would on real weights.
    folder = str(build_tiny_checkpoint(tmp_path / "ckpt", init_std=0.02))
    items = ["a cat on a mat", "the quick brown fox " * 30, {"image": media["jpg"]}, {"audio": media["wav"]},
             {"text": "a caption", "image": media["png"]}]  # fmt: skip
    full = LCOEmbedder(folder, device="cpu").encode(items)
    model = LCOEmbedder(folder, device="cpu", quantization=quantization)
    assert model.quantization == quantization and f"quantization={quantization!r}" in repr(model)
    kinds = _linears(model.model)
    for part in ("language_model", "visual", "audio_tower", "lm_head"):  # the towers too (harmless, measured)
        assert set(kinds[part]) == {"Int8Tensor"}, (part, kinds[part])
    assert type(model.model.model.language_model.embed_tokens.weight).__name__ == "Parameter"  # a table, kept
    cosines = (model.encode(items) * full).sum(axis=1)
    assert cosines.min() >= 0.99, cosines
    assert not np.allclose(cosines, 1.0, atol=1e-7)  # the weights really changed


def test_unavailable_quantizations_say_what_to_do(monkeypatch, tiny_omni):
    for name in ("int4", "nf4"):
        with pytest.raises(ValueError, match=f"quantization='{name}' runs on CUDA only, not cpu.*quantization='int8'"):
            LCOEmbedder(tiny_omni, device="cpu", quantization=name)
    with pytest.raises(ValueError, match="quantization must be one of 'int8', 'int8-dynamic', 'int4', 'nf4'"):
        check_quantization("int2")
    assert set(QUANTIZATIONS) == {"int8", "int8-dynamic", "int4", "nf4"}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a))
    with pytest.raises(ImportError, match=r"needs torchao: pip install 'lco-embedding\[quantization\]'"):
        LCOEmbedder(tiny_omni, device="cpu", quantization="int8")
