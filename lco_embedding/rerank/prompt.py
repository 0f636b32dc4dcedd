"""The chat a generative reranker reads: a query and a candidate, each any item this SDK embeds, in one
conversation that asks whether the candidate meets the query; the model's next token answers "yes" or "no".

The layout (:class:`RerankPrompt`, every text a setting)::

    system:     {system}
    user:       <Instruct>: {instruction}\\n<Query>: {the query's parts}\\n<Document>: {the candidate's parts}
    assistant:  (the answer the score reads: its first token)

A part is a text (cut to the model's ``max_length`` tokens, as ``encode`` cuts user text) or a media part (image,
audio, video, a PDF page's image) at the place it has in its item; consecutive texts join into one text part. The
layout follows Qwen3-Reranker's, without its thinking block (the Qwen2.5-Omni thinker does not think).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.inputs.parse import ParsedItem, parse_item

__all__ = ["DEFAULT_INSTRUCTION", "DEFAULT_SYSTEM", "RerankPrompt"]

DEFAULT_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the "
    'answer can only be "yes" or "no".'
)
DEFAULT_INSTRUCTION = "Given a query, judge whether the document is relevant to it."


@dataclass(frozen=True)
class RerankPrompt:
    """What a generative reranker asks the model (see the module).

    Attributes:
        system: The system message.
        instruction: The task, after ``<Instruct>:``; a retrieval task of your own fits here.
        answers: The two words whose next-token logits make the score: ``logit(answers[0]) - logit(answers[1])``.
            Each must be a single token of the checkpoint's tokenizer.
    """

    system: str = DEFAULT_SYSTEM
    instruction: str = DEFAULT_INSTRUCTION
    answers: tuple[str, str] = ("yes", "no")

    def conversation(self, query: Any, candidate: Any, cut: Callable[[str], str] = lambda text: text) -> list[dict]:
        """The chat of one pair (a conversation item, which the pipeline embeds as given).

        Raises:
            LCOInputError: The query or the candidate is not an item this SDK reads, is itself a conversation, or
                carries its own media settings (a pair is one chat: set them on the model).
        """
        content: list[dict[str, Any]] = []
        text = f"<Instruct>: {self.instruction}\n<Query>: "
        for role, value in (("query", query), ("document", candidate)):
            if role == "document":
                text += "\n<Document>: "
            for part in _parts(role, value):
                if not part.is_media:
                    text += cut(part.value)
                    continue
                if text:
                    content.append({"type": "text", "text": text})
                content.append({"type": part.modality, part.modality: part.value})
                text = ""
        if text:
            content.append({"type": "text", "text": text})
        system = [{"type": "text", "text": self.system}]
        return [{"role": "system", "content": system}, {"role": "user", "content": content}]


def _parts(role: str, value: Any) -> list[Any]:
    """The parts of a query or candidate, in order."""
    try:
        item: ParsedItem = parse_item(value)
    except LCOInputError as e:
        raise LCOInputError(f"the {role}: {e.reason}") from None
    if item.kind == "conversation":
        raise LCOInputError(f"the {role} is a conversation; a rerank pair takes items (a text, media, mixed).")
    if item.budgets or item.audio_in_video is not None:
        settings = sorted(item.budgets) + (["use_audio_in_video"] if item.audio_in_video is not None else [])
        raise LCOInputError(
            f"the {role} carries its own media settings {settings}; a rerank pair is one chat, so set them on the "
            "model (LCOEmbedder(path, max_pixels=...)) or on the call (use_audio_in_video=...)."
        )
    return item.parts
