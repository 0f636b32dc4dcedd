"""Random-weight checkpoints for the benchmarks, built from config (no download: timing does not depend on the
weight values).

* ``cpu-7b-scaled``: the LCO-Embedding-Omni-7B architecture scaled down for a CPU: the same 28 decoder layers, the
  same vocabulary-to-hidden ratio (152,064 / 3,584 = 42.4 -> 10,880 / 256) and MLP ratio (18,944 / 3,584 = 5.3 ->
  1,352 / 256), so the relative costs of the vocabulary head, the layers and padding match the real model. The vision
  (32 blocks) and audio (32 layers) encoders keep their depth at a tenth of their width.
* ``tiny-2048``: one decoder layer of hidden size 2,048 (an Omni-3B's embedding width) and tiny towers: a near-free
  model whose answers are as large as a real one's, for the server's serialization cost.
* ``omni-3b`` / ``omni-7b``: the real Qwen2.5-Omni-3B / -7B thinker architectures (LCO-Embedding-Omni-3B / -7B), for
  GPU runs.

The tokenizer is the tiny byte-level BPE of :mod:`lco_embedding.testing`; workload lengths are measured with it.
"""

from __future__ import annotations

from pathlib import Path

from lco_embedding.testing import build_tiny_checkpoint

_REAL_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "fullatt_block_indexes": [7, 15, 23, 31],
}
_REAL_AUDIO = {"encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "d_model": 1280}


def _text(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int, mrope: list[int]):
    return {
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": vocab,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope},
    }


PRESETS: dict[str, dict] = {
    "cpu-7b-scaled": {
        "text_config": _text(256, 1352, 28, 4, 2, 10880, [8, 12, 12]),
        "vision_config": {
            "depth": 32,
            "hidden_size": 128,
            "intermediate_size": 342,
            "num_heads": 2,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "out_hidden_size": 256,
        },
        "audio_config": {
            "encoder_layers": 32,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 512,
            "d_model": 128,
            "output_dim": 256,
        },
    },
    "tiny-2048": {
        "text_config": {
            "hidden_size": 2048,
            "intermediate_size": 2048,
            "num_hidden_layers": 1,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        },
        "vision_config": {"out_hidden_size": 2048},
        "audio_config": {"output_dim": 2048},
    },
    "omni-3b": {
        "text_config": _text(2048, 11008, 36, 16, 2, 151936, [16, 24, 24]),
        "vision_config": {**_REAL_VISION, "out_hidden_size": 2048},
        "audio_config": {**_REAL_AUDIO, "output_dim": 2048},
    },
    "omni-7b": {
        "text_config": _text(3584, 18944, 28, 28, 4, 152064, [16, 24, 24]),
        "vision_config": {**_REAL_VISION, "out_hidden_size": 3584},
        "audio_config": {**_REAL_AUDIO, "output_dim": 3584},
    },
}


def build(preset: str, folder: str | Path, dtype: str = "float32") -> Path:
    """Build (once) the checkpoint of ``preset`` under ``folder`` and return its path."""
    path = Path(folder) / preset
    if any(path.glob("*.safetensors")):
        return path
    real = preset in ("omni-3b", "omni-7b")  # drawn a shard at a time: a 7B never sits in memory whole
    return build_tiny_checkpoint(path, "omni-thinker", init_std=0.02, dtype=dtype, low_memory=real, **PRESETS[preset])
