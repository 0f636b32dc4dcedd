"""GPU tests (``pytest -m gpu``; skipped without CUDA): bf16 against float32, flash-attention against SDPA, and
recovery from a real CUDA out-of-memory error."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from lco_embedding import EncodeReport, LCOEmbedder
from lco_embedding.testing import build_tiny_checkpoint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    # Weights of a realistic scale (std 0.02), so bf16 rounding behaves as in a trained model.
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("gpu-ckpt"), init_std=0.02))


@pytest.fixture(scope="module")
def items(media) -> list:
    return [
        "a short text",
        "a much longer text about many things " * 20,
        {"image": media["jpg"]},
        {"audio": media["wav"]},
        {"video": media["mp4"]},
        {"text": "caption", "image": media["png"]},
    ]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_bfloat16_agrees_with_float32(checkpoint, items):
    full = LCOEmbedder(checkpoint, device="cuda", dtype="float32").encode(items)
    half = LCOEmbedder(checkpoint, device="cuda", dtype="bfloat16").encode(items)
    assert _cosines(full, half).min() >= 0.999


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="flash-attn is not installed")
def test_flash_attention_agrees_with_sdpa(checkpoint, items):
    sdpa = LCOEmbedder(checkpoint, device="cuda", dtype="bfloat16", attn_implementation="sdpa").encode(items)
    flash = LCOEmbedder(checkpoint, device="cuda", dtype="bfloat16", attn_implementation="flash_attention_2")
    assert _cosines(sdpa, flash.encode(items)).min() >= 0.999


def test_a_real_cuda_out_of_memory_is_recovered(checkpoint):
    model = LCOEmbedder(checkpoint, device="cuda", dtype="float32")
    texts = [f"text number {i} " + "many words in a row " * (20 + 5 * i) for i in range(48)]
    expected = model.encode(texts, max_tokens_per_batch=2048)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    ballast = torch.empty(max(free - (48 << 20), 0), dtype=torch.uint8, device="cuda")  # leave ~48 MiB free
    report = EncodeReport()
    try:
        out = model.encode(texts, max_tokens_per_batch=1 << 20, batch_size=48, report=report)
    finally:
        del ballast
        torch.cuda.empty_cache()
    assert report.stats.oom_splits >= 1
    assert report.kept == list(range(len(texts)))
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("quantization", "package"), [("int8", "torchao"), ("int4", "torchao"), ("nf4", "bitsandbytes")]
)
def test_quantized_loading_on_cuda(checkpoint, items, quantization, package):
    """Each quantization loads on CUDA, quantizes the language model only, and stays close to bfloat16."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"needs {package}")
    full = LCOEmbedder(checkpoint, device="cuda").encode(items)
    model = LCOEmbedder(checkpoint, device="cuda", quantization=quantization)
    assert model.quantization == quantization
    modules = model.model.named_modules()
    towers = [m for n, m in modules if n.startswith("model.visual") and isinstance(m, torch.nn.Linear)]
    assert towers and all(type(m.weight).__name__ == "Parameter" for m in towers)
    cosines = _cosines(model.encode(items), full)
    assert cosines.min() >= (0.99 if quantization == "int8" else 0.95), cosines
