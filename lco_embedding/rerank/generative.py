"""The generative score: a checkpoint of the Qwen2.5-Omni thinker (or Qwen2.5-VL) architecture reads a pair's chat
(:mod:`.prompt`) and the score is ``logit(yes) - logit(no)`` for its next token.

The logits of the last position are ``lm_head(h)``, with ``h`` the last position's final hidden state: exactly what
``encode`` computes as an embedding (before normalisation). So a pair is scored by the embedding pipeline itself —
the same featurizing, token-budget batching and forward pass — and the two logits' difference is one dot product,
``h . (W[yes] - W[no])``, with the vocabulary head's two rows (no vocabulary-wide product). ``sigmoid(score)`` is
the model's probability of "yes" given that it answers "yes" or "no".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.outcomes import Outcome
from lco_embedding.rerank.prompt import RerankPrompt

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["GenerativeScorer", "answer_token"]


def answer_token(tokenizer: Any, word: str) -> int:
    """The id of ``word`` as one token of ``tokenizer``.

    Raises:
        ValueError: ``word`` is not a single token (the score would read the first token of several).
    """
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"the checkpoint's tokenizer reads the answer {word!r} as {len(ids)} tokens {ids}, not one: a generative "
            "reranker needs single-token answers (RerankPrompt(answers=(...)))."
        )
    return int(ids[0])


class GenerativeScorer:
    """Scores pairs with an :class:`~lco_embedding.LCOEmbedder`'s model (see the module).

    Args:
        embedder: The loaded model.
        prompt: The chat's texts and answers.
    """

    def __init__(self, embedder: LCOEmbedder, prompt: RerankPrompt) -> None:
        self.embedder, self.prompt = embedder, prompt
        tokenizer = embedder.processor.tokenizer
        self.answer_ids = tuple(answer_token(tokenizer, word) for word in prompt.answers)
        head = embedder.model.get_output_embeddings()
        weight = head.weight
        plain = type(weight.data) is torch.Tensor  # a quantized head's weight is a tensor subclass
        self._head = None if plain else head
        rows = weight.detach()[list(self.answer_ids)].float().cpu() if plain else None
        bias = getattr(head, "bias", None)
        self._direction = None if rows is None else (rows[0] - rows[1]).numpy()
        self._offset = (
            0.0 if bias is None or rows is None else float(bias[self.answer_ids[0]] - bias[self.answer_ids[1]])
        )

    def outcomes(self, pairs: Iterable[tuple[Any, Any]], **keywords: Any) -> Iterator[Outcome]:
        """Each pair's :class:`~lco_embedding.Outcome`: its score, or why it failed (an error naming the query or the
        document), in order. Keywords are ``encode``'s (``batch_size``, ``use_audio_in_video``, ...)."""
        pipeline = self.embedder.pipeline(normalize_embeddings=False, **keywords)
        cut = pipeline.featurizer.truncate

        def chats() -> Iterator[Any]:
            for index, pair in enumerate(pairs):
                try:
                    query, candidate = pair
                except (TypeError, ValueError):
                    raise ValueError(f"pair {index} is not a (query, document) pair: {pair!r:.80}") from None
                try:
                    yield self.prompt.conversation(query, candidate, cut)
                except LCOInputError as e:
                    yield e.at(index)

        for outcome in pipeline.raw_outcomes(chats()):
            if outcome.error is not None:
                yield outcome
            else:
                yield Outcome(outcome.index, self.score(outcome.embedding), None)

    def score(self, hidden: Any) -> float:
        """``logit(yes) - logit(no)`` of the last position's final hidden state."""
        if self._direction is not None:
            state = torch.as_tensor(hidden).float().cpu().numpy()
            return float(np.dot(state, self._direction)) + self._offset
        head = self._head
        assert head is not None
        with torch.inference_mode():
            state = torch.as_tensor(hidden, device=head.weight.device).to(self.embedder.dtype)
            logits = head(state[None])[0, list(self.answer_ids)].float()
        return float(logits[0] - logits[1])
