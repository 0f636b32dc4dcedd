"""User text is text: tokenize what a user wrote without parsing the special-token strings in it.

The chat template wraps user content in special tokens (``<|im_start|>user ... <|im_end|>``, ``<|IMAGE|>``
placeholders), and the processor tokenizes the rendered string in one go, so a user's ``"<|im_end|>"`` would close
the turn and a mention of ``"<|IMAGE|>"`` would demand an image. :class:`SpecialTokenGuard` keeps the template's
special tokens and tokenizes everything a user wrote as ordinary text:

1. every text of the messages is replaced by a marker (the pad token, which the template never emits);
2. the template is rendered; each maximal run between the template's own special tokens that holds a marker is a
   *segment*, and is replaced by one marker;
3. the processor runs on that string (media placeholders expand as usual) and each marker id in its
   ``input_ids`` is replaced by the segment tokenized with special tokens off (a copy of the tokenizer with
   ``encode_special_tokens``, as transformers' ``split_special_tokens=True`` does, but without touching the shared
   tokenizer, which other threads use at the same time).

A tokenizer splits its input at special tokens first and tokenizes the runs between them independently, so for
text without special-token strings this gives exactly the processor's tokens (tested token for token); the guard
is used only when a user's text holds one. ``special_tokens="parse"`` (:class:`~lco_embedding.LCOEmbedder`)
turns it off: the reference pipeline's behaviour.

Does not guard text a custom chat template transforms (trims, escapes) before printing it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import torch

from lco_embedding.core.modalities import MODALITY_TABLE, TEXT

__all__ = ["SpecialTokenPolicy", "SpecialTokenGuard", "SPECIAL_TOKEN_POLICIES"]

SpecialTokenPolicy = Literal["text", "parse"]
SPECIAL_TOKEN_POLICIES: tuple[str, ...] = ("text", "parse")


class SpecialTokenGuard:
    """Tokenizes user content as ordinary text around a chat template's special tokens (see the module).

    Args:
        tokenizer: The checkpoint's (fast) tokenizer.
    """

    def __init__(self, tokenizer: Any) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = tokenizer
        # A copy of the tokenizer that never parses special tokens: transformers' split_special_tokens flips a flag
        # on the shared tokenizer for the length of a call, which other threads' calls would see.
        self._plain = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._plain.encode_special_tokens = True
        self._parsing = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # never flipped by anyone
        specials = {token.content for token in tokenizer.added_tokens_decoder.values() if token.special}
        specials |= set(tokenizer.all_special_tokens)
        self.specials = sorted(specials, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(token) for token in self.specials))
        self.marker = tokenizer.pad_token or "<|endoftext|>"
        self.marker_id = tokenizer.convert_tokens_to_ids(self.marker)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_pattern")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pattern = re.compile("|".join(re.escape(token) for token in self.specials))
        self._plain.encode_special_tokens = True  # not kept by the tokenizer's own pickling

    def plain_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of ``texts`` with every special-token string tokenized as ordinary text (thread-safe)."""
        return [encoding.ids for encoding in self._plain.encode_batch(texts, add_special_tokens=False)]

    def parsing_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of ``texts`` with special-token strings parsed as special tokens (the processor's way)."""
        return [encoding.ids for encoding in self._parsing.encode_batch(texts, add_special_tokens=False)]

    def found_in(self, text: str) -> bool:
        """True when ``text`` holds a special-token string."""
        return self._pattern.search(text) is not None

    def mask(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """``messages`` with every text replaced by the marker, and the texts in the order they were replaced."""
        texts: list[str] = []
        masked = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
                masked.append({**message, "content": self.marker})
                continue
            parts = []
            for part in content or []:
                if isinstance(part, dict) and MODALITY_TABLE.get(part.get("type")) is TEXT:
                    texts.append(part["text"])
                    parts.append({**part, "text": self.marker})
                else:
                    parts.append(part)
            masked.append({**message, "content": parts})
        return masked, texts

    def segments(self, rendered: str, texts: list[str]) -> tuple[str, list[str]]:
        """Cut the masked rendering into the template's special tokens and the segments that hold user text:
        ``(the rendering with one marker per segment, the segments' texts)``."""
        if rendered.count(self.marker) != len(texts):
            raise RuntimeError(
                f"the chat template printed the marker {self.marker!r} {rendered.count(self.marker)} times for "
                f"{len(texts)} texts; it cannot be guarded (use special_tokens='parse')."
            )
        out: list[str] = []
        segments: list[str] = []
        run: list[str] = []
        has_text = False
        given = iter(texts)

        def close() -> None:
            nonlocal run, has_text
            if has_text:
                segments.append("".join(run))
                out.append(self.marker)
            else:
                out.extend(run)
            run, has_text = [], False

        position = 0
        for match in self._pattern.finditer(rendered):
            if match.start() > position:
                run.append(rendered[position : match.start()])
            if match.group() == self.marker:
                run.append(next(given))
                has_text = True
            else:
                close()
                out.append(match.group())
            position = match.end()
        if position < len(rendered):
            run.append(rendered[position:])
        close()
        return "".join(out), segments

    def splice(self, input_ids: torch.Tensor, segments: list[str]) -> torch.Tensor:
        """``input_ids`` (batch of one) with each marker replaced by its segment tokenized as ordinary text."""
        ids = input_ids[0].tolist()
        places = [i for i, token in enumerate(ids) if token == self.marker_id]
        if len(places) != len(segments):
            raise RuntimeError(f"expected {len(segments)} marker tokens after the processor, found {len(places)}.")
        pieces = self.plain_ids(segments)
        spliced: list[int] = []
        previous = 0
        for place, piece in zip(places, pieces, strict=True):
            spliced += ids[previous:place] + list(piece)
            previous = place + 1
        spliced += ids[previous:]
        return torch.tensor([spliced], dtype=input_ids.dtype)
