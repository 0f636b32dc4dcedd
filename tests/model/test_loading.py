"""Checkpoint families, device/dtype/attention resolution, unsupported model types."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from lco_embedding import LCOEmbedder
from lco_embedding.model.loading import resolve_attn, resolve_device, resolve_dtype


def _thinker_key(key: str) -> str:
    key = key.removeprefix("thinker.")
    if key.startswith("model."):
        return "model.language_model." + key[len("model.") :]
    if key.startswith(("audio_tower.", "visual.")):
        return "model." + key
    return key


def test_full_omni_checkpoint_loads_the_thinker_only(tiny_omni_full, tmp_path, media):
    folder = tmp_path / "full"
    shutil.copytree(tiny_omni_full, folder)
    weights = load_file(str(folder / "model.safetensors"))
    # A talker tensor in the file must be ignored, never built or loaded.
    save_file(
        {**weights, "talker.codec_head.weight": torch.ones(3, 3)},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    model = LCOEmbedder(str(folder), device="cpu")
    assert model.model_type == "qwen2_5_omni"
    assert type(model.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    state = model.model.state_dict()
    assert all(torch.equal(value, state[_thinker_key(key)]) for key, value in weights.items())
    assert not any("talker" in key for key in state)
    assert model.encode(["a", {"audio": media["wav"]}, media["png"]]).shape == (3, 64)


def test_qwen2_5_vl_checkpoint(tiny_vl, media):
    model = LCOEmbedder(tiny_vl, device="cpu")
    assert model.modalities == ["text", "image", "video"]
    out = model.encode(["a cat", media["png"], {"video": media["mp4_short"]}, {"text": "t", "image": media["jpg"]}])
    assert out.shape == (4, 64) and np.isfinite(out).all()
    single = np.stack([model.encode(x) for x in ["a cat", media["png"]]])
    np.testing.assert_allclose(out[:2], single, atol=1e-5, rtol=0)


def test_unsupported_model_type_names_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert'.*qwen2_5_omni_thinker, qwen2_5_omni, qwen2_5_vl"):
        LCOEmbedder(str(tmp_path))


def test_resolution_defaults():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device(None).type in ("cpu", "mps")
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    assert resolve_dtype(None, torch.device("mps")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_dtype("float99", torch.device("cpu"))
    assert resolve_attn(None, torch.device("cpu")) == "sdpa"
    assert resolve_attn("eager", torch.device("cuda")) == "eager"


def test_torch_dtype_is_deprecated(tiny_omni):
    with pytest.warns(FutureWarning, match="dtype"):
        model = LCOEmbedder(tiny_omni, device="cpu", torch_dtype="float32")
    assert model.dtype == torch.float32


def test_bfloat16_on_cpu_stays_close_to_float32(tiny_omni, embedder):
    model = LCOEmbedder(tiny_omni, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    cos = (model.encode(["a cat on a mat"]) * embedder.encode(["a cat on a mat"])).sum()
    assert cos > 0.95
