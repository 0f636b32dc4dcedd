"""The reference pipeline of the LCO-Embedding model card, written out independently of the SDK.

``Qwen2_5OmniProcessor`` + ``qwen_omni_utils.process_mm_info`` + ``model(**inputs, output_hidden_states=True)
.hidden_states[-1][:, -1]``, left padding, L2-normalised.
"""

from __future__ import annotations

import numpy as np
import torch

SUFFIX = "\nSummarize the above {} in one word:"
MIXED = "\nSummarize the above in one word:"
MAX_PIXELS = 1280 * 28 * 28


def text_content(text: str) -> list[dict]:
    return [{"type": "text", "text": text + SUFFIX.format("text")}]


def media_content(kind: str, source) -> list[dict]:
    part = {"type": kind, kind: source}
    if kind == "image":
        part["max_pixels"] = MAX_PIXELS
    return [part, {"type": "text", "text": SUFFIX.format(kind)}]


def mixed_content(parts: list[tuple[str, object]]) -> list[dict]:
    content = []
    for kind, source in parts:
        if kind == "text":
            content.append({"type": "text", "text": source})
        else:
            part = {"type": kind, kind: source}
            if kind == "image":
                part["max_pixels"] = MAX_PIXELS
            content.append(part)
    content.append({"type": "text", "text": MIXED})
    return content


class ReferencePipeline:
    def __init__(self, path: str):
        from transformers import Qwen2_5OmniProcessor, Qwen2_5OmniThinkerForConditionalGeneration

        self.processor = Qwen2_5OmniProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"
        self.model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()

    @torch.no_grad()
    def embed(self, contents: list[list[dict]]) -> np.ndarray:
        from qwen_omni_utils import process_mm_info

        messages = [[{"role": "user", "content": content}] for content in contents]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        audios, images, videos = process_mm_info(messages, use_audio_in_video=False)
        inputs = self.processor(
            text=text, audio=audios, images=images, videos=videos, return_tensors="pt", padding=True
        )
        hidden = self.model(**inputs, output_hidden_states=True).hidden_states[-1][:, -1]
        return torch.nn.functional.normalize(hidden.float(), dim=-1).numpy()
