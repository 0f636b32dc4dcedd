"""The reference pipeline of the LCO-Embedding model card, written out independently of the SDK.

``Qwen2_5OmniProcessor`` + ``qwen_omni_utils.process_mm_info`` + ``model(**inputs, output_hidden_states=True)
.hidden_states[-1][:, -1]``, left padding, L2-normalised; :meth:`ReferencePipeline.embed_loop` is the card's batch
loop (``torch.cuda.empty_cache()`` after every batch). It uses nothing of ``lco_embedding`` but this module, so it
can pin the SDK's results (``tests/test_parity.py``) and serve as the baseline of ``benchmarks/throughput.py``.

Example:
    >>> ref = ReferencePipeline(tiny_checkpoint)
    >>> ref.embed([text_content("a cat"), media_content("image", cat_png)]).shape
    (2, 64)
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["ReferencePipeline", "text_content", "media_content", "mixed_content"]

SUFFIX = "\nSummarize the above {} in one word:"
MIXED = "\nSummarize the above in one word:"
MAX_PIXELS = 1280 * 28 * 28


def text_content(text: str) -> list[dict]:
    """The message content of a text item."""
    return [{"type": "text", "text": text + SUFFIX.format("text")}]


def media_content(kind: str, source) -> list[dict]:
    """The message content of an image, audio or video item."""
    part = {"type": kind, kind: source}
    if kind == "image":
        part["max_pixels"] = MAX_PIXELS
    return [part, {"type": "text", "text": SUFFIX.format(kind)}]


def mixed_content(parts: list[tuple[str, object]]) -> list[dict]:
    """The message content of a mixed item given as ``[(kind, source), ...]`` in order."""
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
    """The model card's pipeline on a checkpoint folder (float32 unless ``dtype`` says otherwise)."""

    def __init__(self, path: str, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        from transformers import Qwen2_5OmniProcessor, Qwen2_5OmniThinkerForConditionalGeneration

        self.processor = Qwen2_5OmniProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"
        self.model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device = device

    @torch.no_grad()
    def embed(self, contents: list[list[dict]], use_audio_in_video: bool = False) -> np.ndarray:
        """Embed message contents in one batch; ``use_audio_in_video`` as the model card's flag (the sound tracks
        read by qwen-omni-utils, the processor told which audio is which video's, the thinker given the flag)."""
        from qwen_omni_utils import process_mm_info

        messages = [[{"role": "user", "content": content}] for content in contents]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        audios, images, videos = process_mm_info(messages, use_audio_in_video=use_audio_in_video)
        flags: dict = {}
        if use_audio_in_video:
            # transformers 5.x asks which audio slot is which video's sound (None: a standalone audio).
            kinds = [part["type"] for content in contents for part in content if part["type"] in ("audio", "video")]
            videos_seen = iter(range(len(kinds)))
            slots = [next(videos_seen) if kind == "video" else None for kind in kinds]
            flags = {"load_audio_from_video": True, "audio_from_video_indices": slots}
        inputs = self.processor(
            text=text, audio=audios, images=images, videos=videos, return_tensors="pt", padding=True, **flags
        )
        dtype = self.model.dtype
        inputs = {
            key: value.to(self.device, dtype if value.is_floating_point() else None) for key, value in inputs.items()
        }
        hidden = self.model(**inputs, use_audio_in_video=use_audio_in_video, output_hidden_states=True).hidden_states[
            -1
        ][:, -1]
        return torch.nn.functional.normalize(hidden.float(), dim=-1).cpu().numpy()

    @torch.no_grad()
    def answer_logits(self, messages: list[dict], answers: tuple[int, int], use_audio_in_video: bool = False) -> float:
        """``logit(answers[0]) - logit(answers[1])`` of the next token after one chat (``messages`` with their
        media, the generation prompt added), from the model's full logits: what a generative reranker scores."""
        from qwen_omni_utils import process_mm_info

        text = self.processor.apply_chat_template([messages], tokenize=False, add_generation_prompt=True)
        audios, images, videos = process_mm_info([messages], use_audio_in_video=use_audio_in_video)
        inputs = self.processor(text=text, audio=audios, images=images, videos=videos, return_tensors="pt")
        dtype = self.model.dtype
        inputs = {
            key: value.to(self.device, dtype if value.is_floating_point() else None) for key, value in inputs.items()
        }
        logits = self.model(**inputs, use_audio_in_video=use_audio_in_video).logits[0, -1].float()
        return float(logits[answers[0]] - logits[answers[1]])

    def embed_loop(self, contents: list[list[dict]], batch_size: int = 8) -> np.ndarray:
        """The card's loop: batches of ``batch_size`` in input order, ``empty_cache()`` after each."""
        out = []
        for start in range(0, len(contents), batch_size):
            out.append(self.embed(contents[start : start + batch_size]))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return np.concatenate(out)
