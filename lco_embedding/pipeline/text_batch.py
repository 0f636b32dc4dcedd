"""Featurize many text items at once: the chat template rendered once per prompt, the window tokenized in one call.

The per-item path (:meth:`lco_embedding.pipeline.featurize.Featurizer.featurize`) renders the chat template and runs the
processor for every item: about 0.7 ms each, most of it the processor's keyword handling. A text item's tokens are
``head + tokens(segment) + tail``, where head and tail are the template's tokens around the one run of text that
holds the user's content (the tokenizer splits at special tokens first, so the runs between them are tokenized
independently), and the segment is ``"user\\n" + prompt + text + suffix``. :class:`TextBatcher` renders the template
once per (prompt, suffix), keeps head and tail as ids, and tokenizes the segments of a whole window in one call of
the fast tokenizer. User text is cut to ``max_length`` tokens first, also in one call, tokenizing only as much of a
long text as the cut needs (:meth:`TextBatcher.truncated`, which the per-item path uses too).

Exactness is checked, not assumed: on first use for each (prompt, suffix) the batched tokens of a probe text are
compared with the per-item path's; a checkpoint whose template does not have this shape (or whose processor adds
outputs other than ``mm_token_type_ids``) falls back to the per-item path for good.
``tests/pipeline/test_text_batch.py`` compares the two token for token on adversarial strings.

Does not batch items with media, conversations or several text parts: they take the per-item path.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from lco_embedding.core import notes
from lco_embedding.core.modalities import MODALITY_TABLE, TEXT
from lco_embedding.pipeline.features import Features

if TYPE_CHECKING:
    from lco_embedding.inputs.parse import ParsedItem

__all__ = ["PREFIX_MARGIN", "TextBatcher"]

logger = logging.getLogger(__name__)

_PROBE = "a probe text, to check the batched tokens against the processor"
_EXTRA_KEYS_OF_ZEROS = {"mm_token_type_ids", "token_type_ids"}
PREFIX_MARGIN = 64
COUNT_CHUNK_CHARS = 1 << 16
"""Characters tokenized at a time when only a text's length in tokens matters (:meth:`TextBatcher.longer_than`)."""
"""Tokens tokenized past ``max_length`` when only a prefix of a long text is tokenized (see ``truncated``)."""


@dataclass(frozen=True)
class _Template:
    """The template around one text item's content, for one (prompt, suffix)."""

    head: list[int]
    tail: list[int]
    before: str  # the segment's text before the user's text ("user\\n" + prompt)
    after: str  # and after it (the suffix)
    extra_keys: tuple[str, ...]  # processor outputs besides input_ids/attention_mask, all zeros for text


class PerItemFeaturizer(Protocol):
    """What the text batcher needs of the per-item featurizer it reproduces (a
    :class:`~lco_embedding.pipeline.featurize.Featurizer`)."""

    processor: Any
    guard: Any
    max_length: int | None
    mixed_suffix: Any
    special_tokens: Any

    def prepare(self, item: Any, prompt: str | None) -> tuple[Any, Any]:
        """The item's chat messages and media."""
        ...

    def featurize(self, index: int, item: Any, prompt: str | None) -> Any:
        """The item's features, one at a time."""
        ...


class TextBatcher:
    """Builds text items' features many at a time (see the module).

    Args:
        featurizer: The :class:`~lco_embedding.pipeline.featurize.Featurizer` whose per-item path it reproduces (it owns
            this batcher; typed loosely so that neither module imports the other).
    """

    def __init__(self, featurizer: PerItemFeaturizer) -> None:
        self.featurizer = featurizer
        self._templates: dict[tuple[str, str], _Template | None] = {}
        self._longest_token: int | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "featurizer": self.featurizer,
            "_templates": dict(self._templates),
            "_longest_token": self._longest_token,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @staticmethod
    def accepts(item: ParsedItem) -> bool:
        """True for an item this batcher builds: one text part, nothing else."""
        return item.single_text

    def featurize(self, indexed: list[tuple[int, ParsedItem]], prompt: str | None) -> list[Features] | None:
        """Features of text items (``accepts`` true for each), in order; None when this checkpoint's template
        cannot be batched (then use the per-item path)."""
        from lco_embedding.inputs.prompts import suffix_for

        featurizer = self.featurizer
        suffix = suffix_for([TEXT.name], featurizer.mixed_suffix)
        template = self._template(prompt or "", suffix)
        if template is None:
            return None
        texts, cut = self.cut([item.parts[0].value for _, item in indexed])
        ids = self._encode([template.before + text + template.after for text in texts])
        features = []
        for (index, _), tokens, was_cut in zip(indexed, ids, cut, strict=True):
            row = torch.tensor([template.head + tokens + template.tail], dtype=torch.long)
            inputs = {"input_ids": row, "attention_mask": torch.ones_like(row)}
            for key in template.extra_keys:
                inputs[key] = torch.zeros_like(row)
            noted = {notes.TEXT: 1.0} if was_cut else {}
            features.append(Features(index=index, inputs=inputs, length=row.shape[1], cut=noted))
        return features

    # ------------------------------------------------------------------------------------------------ helpers
    def _encode(self, texts: list[str]) -> list[list[int]]:
        featurizer = self.featurizer
        if featurizer.special_tokens == "text":
            return featurizer.guard.plain_ids(texts)
        return featurizer.guard.parsing_ids(texts)

    def truncated(self, texts: list[str]) -> list[str]:
        """``texts`` cut to ``max_length`` tokens (:meth:`cut`), each cut noted (:mod:`lco_embedding.core.notes`)."""
        kept, cut = self.cut(texts)
        for was_cut in cut:
            if was_cut:
                notes.note(notes.TEXT)
        return kept

    def cut(self, texts: list[str]) -> tuple[list[str], list[bool]]:
        """``texts`` cut to ``max_length`` tokens as the reference cuts them (tokenize, keep ``max_length`` tokens,
        decode), in one tokenizer call, and which of them were cut; the per-item path cuts with this too.

        Only a prefix of a long text is tokenized, so memory follows ``max_length``, not the text: enough characters
        for ``max_length + PREFIX_MARGIN`` tokens however the tokenizer normalizes them (:meth:`prefix_chars`); the
        tokens past ``max_length`` are the margin that keeps the cut exactly where tokenizing the whole text puts it.
        A prefix that still holds fewer tokens (a normalizer that collapses runs of characters) is doubled until it
        holds enough, or is the whole text.
        """
        max_length = self.featurizer.max_length
        if max_length is None:
            return texts, [False] * len(texts)
        decode = self.featurizer.processor.tokenizer.decode
        kept, cut = [], []
        for text, ids in zip(texts, self._bounded_ids(texts, from_end=False), strict=True):
            cut.append(len(ids) > max_length)
            kept.append(decode(ids[:max_length]) if cut[-1] else text)
        return kept, cut

    def keep_end(self, text: str) -> str:
        """``text``'s last ``max_length`` tokens (Cohere's ``truncate="START"``), tokenizing only its end; the text
        itself when it is not longer."""
        max_length = self.featurizer.max_length
        if max_length is None:
            return text
        ids = self._bounded_ids([text], from_end=True)[0]
        if len(ids) <= max_length:
            return text
        return self.featurizer.processor.tokenizer.decode(ids[-max_length:])

    def too_long(self, text: str) -> bool:
        """True when ``text`` is longer than ``max_length`` tokens (tokenizing no more than that needs)."""
        max_length = self.featurizer.max_length
        return max_length is not None and len(self._bounded_ids([text], from_end=False)[0]) > max_length

    def longer_than(self, text: str, tokens: int) -> bool:
        """True when ``text`` alone is more than ``tokens`` tokens, under any ``max_length`` (a server's bound on an
        item). A text of no more UTF-8 bytes than that is not (no token is shorter than a byte); a longer one is
        tokenized :data:`COUNT_CHUNK_CHARS` characters at a time, each chunk ending before a space, until the count
        passes ``tokens`` or the text ends, so memory stays flat whatever its length. Byte-level BPE tokenizers with
        Qwen's pre-tokenizer split before spaces, so the chunks' counts add up to the whole text's exactly; a chunk
        of 64K characters with no space in it ends inside a token, and counts a token or two more there (never
        fewer, in ``tests/pipeline/test_text_batch.py``)."""
        if len(text) <= tokens and len(text.encode("utf-8")) <= tokens:
            return False
        counted, start = 0, 0
        while start < len(text) and counted <= tokens:
            end = min(len(text), start + COUNT_CHUNK_CHARS)
            if end < len(text):
                space = text.rfind(" ", start + 1, end)
                end = space if space > start else end
            counted += len(self._encode([text[start:end]])[0])
            start = end
        return counted > tokens

    def _bounded_ids(self, texts: list[str], *, from_end: bool) -> list[list[int]]:
        """Token ids of each text's head (or end) holding at least ``max_length + PREFIX_MARGIN`` tokens (all of
        a shorter text): the prefix (suffix) is doubled until it holds that many or is the whole text."""
        assert self.featurizer.max_length is not None
        wanted = self.featurizer.max_length + PREFIX_MARGIN
        limit = self.prefix_chars(wanted)

        def piece(text: str, size: int) -> str:
            return text[-size:] if from_end else text[:size]

        found = []
        for text, ids in zip(texts, self._encode([piece(text, limit) for text in texts]), strict=True):
            size = min(limit, len(text))
            while len(ids) < wanted and size < len(text):
                size *= 2
                ids = self._encode([piece(text, size)])[0]
            found.append(ids)
        return found

    def prefix_chars(self, tokens: int) -> int:
        """Characters that surely make at least ``tokens`` tokens: a token spans at most as many characters as the
        longest vocabulary entry has (bytes, for byte-level vocabularies), and Unicode normalization (NFC/NFKC) joins
        at most four characters into one."""
        if self._longest_token is None:
            vocabulary = self.featurizer.processor.tokenizer.get_vocab()
            self._longest_token = max(map(len, vocabulary), default=1)
        return tokens * 4 * self._longest_token

    def _template(self, prompt: str, suffix: str) -> _Template | None:
        key = (prompt, suffix)
        if key in self._templates:
            return self._templates[key]
        with self._lock:
            if key not in self._templates:
                self._templates[key] = self._build(prompt, suffix)
        return self._templates[key]

    def _build(self, prompt: str, suffix: str) -> _Template | None:
        """Render the template around a marker, split it, and check the result against the per-item path."""
        from lco_embedding.inputs.parse import parse_item

        featurizer = self.featurizer
        guard = featurizer.guard
        sentinel = "\ue000"  # a private-use character: in no template, and one segment of its own run
        messages, _ = featurizer.prepare(parse_item(sentinel), None)
        content = messages[0]["content"] if messages and isinstance(messages[0].get("content"), list) else None
        if not content or MODALITY_TABLE.get(content[-1].get("type")) is not TEXT:
            return None
        masked, texts = guard.mask(messages)
        rendered = featurizer.processor.apply_chat_template(masked, tokenize=False, add_generation_prompt=True)
        try:
            text, segments = guard.segments(rendered, texts)
        except RuntimeError:
            return None
        if len(segments) != 1 or segments[0].count(sentinel) != 1:
            return None
        before, after = segments[0].split(sentinel)
        after = after.removeprefix(suffix) if after.startswith(suffix) else None
        if after is None or after:
            return None
        ids = guard.parsing_ids([text])[0]
        places = [i for i, token in enumerate(ids) if token == guard.marker_id]
        if len(places) != 1:
            return None
        template = _Template(
            head=ids[: places[0]],
            tail=ids[places[0] + 1 :],
            before=before + prompt,
            after=suffix,
            extra_keys=(),
        )
        return self._checked(template, prompt)

    def _checked(self, template: _Template, prompt: str) -> _Template | None:
        from lco_embedding.inputs.parse import parse_item

        expected = self.featurizer.featurize(0, parse_item(_PROBE), prompt or None).inputs
        extra = tuple(sorted(set(expected) - {"input_ids", "attention_mask"}))
        if set(extra) - _EXTRA_KEYS_OF_ZEROS or any(bool(expected[key].any()) for key in extra):
            logger.debug("Text items take the per-item path: the processor adds %s", extra)
            return None
        template = _Template(template.head, template.tail, template.before, template.after, extra)
        ids = template.head + self._encode([template.before + _PROBE + template.after])[0] + template.tail
        if ids != expected["input_ids"][0].tolist():
            logger.debug("Text items take the per-item path: the batched tokens differ from the processor's.")
            return None
        return template
