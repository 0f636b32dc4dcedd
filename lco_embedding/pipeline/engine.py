"""The throughput engine: featurize ahead in background workers, plan batches by tokens, recover from out-of-memory.

:meth:`Engine.run` reads items lazily from any iterable and hands them to workers (threads or processes) that
turn them into :class:`~.featurize.Features`; a bounded look-ahead keeps about one window of items in
flight, so memory stays flat however long the stream is. Featurized items are gathered into a *window* (until it
holds ``2 * max_tokens`` tokens or ``16 * batch_size`` items); the window is cut into batches of similar length
under the token budget (:func:`~.batching.plan_batches`) and run while the workers already featurize
the next window. Results come out in input order, one :class:`~lco_embedding.core.outcomes.Outcome` per item: its
raw embedding, or its :class:`~lco_embedding.core.errors.LCOInputError` (what a caller does with failures is its
``on_error``, applied by :func:`~lco_embedding.core.outcomes.apply_on_error`; the engine never raises an item's
error).

On out-of-memory a batch is split in two and retried, and the budget is halved for the rest of the call; an item
that does not fit alone, or whose output is not finite, gets an :class:`~lco_embedding.core.errors.LCOEmbeddingError`
naming it. Any other failure of the forward pass propagates (it is not an item's fault). No item is lost,
duplicated or reordered. ``fault``, a callable
run before every forward, lets tests inject an out-of-memory error without a GPU
(:func:`lco_embedding.testing.simulate_oom`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lco_embedding.core.errors import LCOEmbeddingError, LCOInputError
from lco_embedding.core.outcomes import Outcome
from lco_embedding.pipeline.batching import padded_tokens, plan_batches
from lco_embedding.pipeline.features import Features

__all__ = ["Engine", "EngineStats", "ForwardCosts", "is_out_of_memory"]

logger = logging.getLogger(__name__)

WINDOW_BUDGETS = 2
"""A window closes once it holds this many batch budgets of tokens ..."""
WINDOW_BATCHES = 16
"""... or this many times ``batch_size`` items."""


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA's ``OutOfMemoryError`` and for other backends' out-of-memory ``RuntimeError``."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


class ForwardCosts:
    """What a forward pass costs on this machine: ``seconds = fixed + per_token * padded_tokens``, fitted by least
    squares over the recent passes.

    :meth:`overhead` (``fixed / per_token``, in tokens) is the batch overhead the planner should charge: large where
    every pass pays for Python and kernel launches whatever its size (small models, GPUs), small where compute per
    token dominates. Shared by the engines of one model, so what one ``encode`` call learned plans the next.
    """

    SAMPLES = 64
    MIN_SAMPLES = 8

    def __init__(self) -> None:
        self._samples: deque[tuple[int, float]] = deque(maxlen=self.SAMPLES)
        self._seen = 0

    def add(self, padded_tokens: int, seconds: float) -> None:
        """Record one successful forward pass (the very first is left out: it pays for warm-up)."""
        self._seen += 1
        if self._seen > 1:
            self._samples.append((padded_tokens, seconds))

    def __len__(self) -> int:
        """Passes recorded (at most :attr:`SAMPLES`)."""
        return len(self._samples)

    def overhead(self) -> float | None:
        """The fixed cost of a pass in tokens, or None while the passes seen do not tell it apart from the per-token
        cost (too few, or too similar in size)."""
        if len(self._samples) < self.MIN_SAMPLES:
            return None
        tokens = np.array([t for t, _ in self._samples], dtype=np.float64)
        seconds = np.array([s for _, s in self._samples], dtype=np.float64)
        if tokens.std() < 0.2 * tokens.mean():
            return None
        per_token, fixed = np.polyfit(tokens, seconds, 1)
        if per_token <= 0 or fixed <= 0:
            return None
        return float(fixed / per_token)


@dataclass
class EngineStats:
    """Counters of one :meth:`Engine.run`.

    Attributes:
        batches: Forward passes that succeeded.
        tokens: Real tokens embedded.
        padded_tokens: Tokens run through the model, padding included.
        oom_splits: Batches split after an out-of-memory error.
        max_tokens_per_batch: The token budget at the end of the run (lower than at the start after an OOM).
        batch_overhead: The planner's fixed cost of a pass at the end of the run, in tokens (see
            :class:`ForwardCosts`).
    """

    batches: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    oom_splits: int = 0
    max_tokens_per_batch: int = 0
    batch_overhead: int = 0


class Engine:
    """Stream items through featurize -> plan -> forward.

    Args:
        featurize: ``(index, item) -> Features``; raises :class:`LCOInputError` for a bad item. Submitted to
            ``executor`` as is, so it must be picklable for a process pool.
        forward: ``list[Features] -> Tensor`` of pooled embeddings, one row per item, in batch order (or a list of
            per-item outputs: tensors, or dicts of tensors).
        max_tokens: Token budget of one batch (padded tokens).
        batch_size: Most items in one batch.
        batch_overhead: Fixed cost of one forward pass in tokens (see :func:`~.batching.plan_batches`)
            until ``costs`` has measured it.
        executor: Where ``featurize`` runs; ``None`` runs it inline on the calling thread.
        lookahead: Items submitted ahead of the consumer at the start (grows to one window).
        fault: Called with each batch before its forward; raising there acts like a failure of the forward.
        progress: Called with the number of items finished after each batch.
        costs: Where forward passes are timed; the planner then charges the measured fixed cost of a pass.
        featurize_batch: ``[(index, item), ...] -> [Features or LCOInputError, ...]`` for runs of consecutive items
            that ``batchable`` accepts (text): featurized together, on the calling thread.
        batchable: Says which items go to ``featurize_batch``; the others go to ``featurize`` one by one.
    """

    def __init__(
        self,
        featurize: Callable[[int, Any], Features],
        forward: Callable[[list[Features]], torch.Tensor],
        *,
        max_tokens: int,
        batch_size: int,
        batch_overhead: int = 0,
        executor: Executor | None = None,
        lookahead: int = 8,
        fault: Callable[[list[Features]], None] | None = None,
        progress: Callable[[int], None] | None = None,
        costs: ForwardCosts | None = None,
        featurize_batch: Callable[[list[tuple[int, Any]]], list[Features | LCOInputError]] | None = None,
        batchable: Callable[[Any], bool] | None = None,
    ) -> None:
        self.featurize = featurize
        self.featurize_batch = featurize_batch
        self.batchable = batchable if featurize_batch is not None else None
        self.forward = forward
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.executor = executor
        self.lookahead = max(1, lookahead)
        self.fault = fault
        self.progress = progress
        self.costs = costs
        measured = costs.overhead() if costs is not None else None
        self.batch_overhead = batch_overhead if measured is None else min(round(measured), max_tokens)
        self.stats = EngineStats(max_tokens_per_batch=max_tokens, batch_overhead=self.batch_overhead)

    # ------------------------------------------------------------------------------------------------ the stream
    def run(self, items: Iterable[Any]) -> Iterator[Outcome]:
        """Yield every item's :class:`Outcome` (raw row or error), in input order."""
        iterator = enumerate(items)
        # Jobs in input order: a media item each (in the workers), or a run of text items (batched, inline).
        pending: deque[tuple[list[int], Any]] = deque()
        queued = 0  # items in pending
        exhausted = False
        lookahead = self.lookahead

        def top_up() -> None:
            nonlocal exhausted, queued
            if exhausted or queued > lookahead // 2:
                return  # refill in bulk, so runs of text stay long enough to batch
            texts: list[tuple[int, Any]] = []
            while not exhausted and queued + len(texts) < lookahead:
                try:
                    index, item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                if self.batchable is not None and self.batchable(item):
                    texts.append((index, item))
                    continue
                if texts:
                    pending.append(([i for i, _ in texts], self._featurize_texts(texts)))
                    queued, texts = queued + len(texts), []
                pending.append(([index], self._submit(index, item)))
                queued += 1
            if texts:
                pending.append(([i for i, _ in texts], self._featurize_texts(texts)))
                queued += len(texts)

        window: list[Features] = []
        failed: list[tuple[int, LCOInputError]] = []
        tokens = 0
        try:
            while True:
                top_up()
                if not pending:
                    break
                indices, job = pending.popleft()
                queued -= len(indices)
                for outcome in self._resolve(indices, job):
                    if isinstance(outcome, LCOInputError):
                        failed.append((outcome.index, outcome))  # type: ignore[arg-type]
                    else:
                        window.append(outcome)
                        tokens += outcome.length
                if self.window_closes(tokens, len(window)):
                    # Keep the workers busy on the next window while this one runs.
                    lookahead = max(lookahead, len(window) + len(failed))
                    top_up()
                    yield from self._flush(window, failed)
                    window, failed, tokens = [], [], 0
            yield from self._flush(window, failed)
        finally:
            for _, job in pending:
                if isinstance(job, Future):
                    job.cancel()

    def _featurize_texts(self, texts: list[tuple[int, Any]]) -> list[Features | LCOInputError]:
        assert self.featurize_batch is not None
        return [
            outcome if isinstance(outcome, Features) else _item_error(index, outcome)
            for (index, _), outcome in zip(texts, self.featurize_batch(texts), strict=True)
        ]

    def _submit(self, index: int, item: Any) -> Future[Features] | Features | LCOInputError:
        if self.executor is not None:
            return self.executor.submit(self.featurize, index, item)
        try:
            return self.featurize(index, item)
        except LCOInputError as e:  # only a bad input is the item's outcome; anything else is a fault: it raises
            return _item_error(index, e)

    @staticmethod
    def _resolve(indices: list[int], job: Any) -> list[Features | LCOInputError]:
        if isinstance(job, list):
            return job
        if not isinstance(job, Future):
            return [job]
        try:
            return [job.result()]
        except LCOInputError as e:
            return [_item_error(indices[0], e)]

    def window_closes(self, tokens: int, items: int) -> bool:
        """True once a window of featurized items holding ``tokens`` tokens in ``items`` items is full
        (:data:`WINDOW_BUDGETS` token budgets or :data:`WINDOW_BATCHES` times ``batch_size`` items): the
        window rule of every caller that gathers items itself, like the server."""
        return tokens >= WINDOW_BUDGETS * self.max_tokens or items >= WINDOW_BATCHES * self.batch_size

    def plan(self, window: Sequence[Features]) -> list[list[Features]]:
        """Cut a window into batches of least padding under the token budget
        (:func:`~lco_embedding.pipeline.batching.plan_batches`)."""
        lengths = [(position, features.length) for position, features in enumerate(window)]
        plan = plan_batches(lengths, self.max_tokens, self.batch_size, self.batch_overhead)
        return [[window[position] for position in keys] for keys in plan]

    def _flush(self, window: list[Features], failed: list[tuple[int, LCOInputError]]) -> Iterator[Outcome]:
        results: dict[int, Any] = dict(failed)
        for batch in self.plan(window):
            self._execute(batch, results)
            if self.progress is not None:
                self.progress(len(batch))
        if self.progress is not None and failed:
            self.progress(len(failed))
        for index in sorted(results):
            yield _outcome(index, results[index])

    # --------------------------------------------------------------------------------------------- one batch
    def execute(self, batch: list[Features]) -> list[Outcome]:
        """Run one batch of featurized items (for callers that gather items themselves, like the server): each
        item's :class:`Outcome`, in batch order (``index`` is its ``Features.index``).

        A batch over the token budget, or one that runs out of memory, is split; an item that does not fit alone,
        or whose output is not finite, gets an ``LCOEmbeddingError``; any other failure propagates.
        """
        results: dict[int, Any] = {}
        self._execute(batch, results)
        return [_outcome(features.index, results[features.index]) for features in batch]

    def _execute(self, batch: list[Features], results: dict[int, torch.Tensor | LCOInputError]) -> None:
        """Run one batch; split it when it exceeds the (possibly lowered) budget or runs out of memory."""
        cost = padded_tokens([f.length for f in batch])
        if len(batch) > 1 and cost > self.max_tokens:
            lengths = [(i, f.length) for i, f in enumerate(batch)]
            for keys in plan_batches(lengths, self.max_tokens, self.batch_size, self.batch_overhead):
                self._execute([batch[i] for i in keys], results)
            return
        failure: Exception | None = None
        started = time.perf_counter()
        try:
            if self.fault is not None:
                self.fault(batch)
            pooled = self.forward(batch)
        except Exception as e:
            failure = e
        if failure is None:
            self._learn(cost, time.perf_counter() - started)
            self._store(batch, pooled, results)
            self.stats.batches += 1
            self.stats.tokens += sum(f.length for f in batch)
            self.stats.padded_tokens += cost
            return
        # Handled outside the except block, so the failed forward's tensors can be freed before the retry.
        if is_out_of_memory(failure):
            reason = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
            failure = None
            _free_memory()
            if len(batch) == 1:
                error = LCOEmbeddingError(
                    f"does not fit in memory even alone ({batch[0].length} tokens; {reason}): give a smaller input "
                    "(fewer pixels, frames or seconds, or shorter text), lower the model's budgets for it, or use a "
                    "device with more memory.",
                    batch[0].index,
                )
                self._fail(batch[0].index, error, results)
                return
            self.max_tokens = max(1, min(self.max_tokens, cost) // 2)
            self.stats.oom_splits += 1
            self.stats.max_tokens_per_batch = self.max_tokens
            logger.warning(
                "Out of memory on a batch of %d items (%d padded tokens): splitting it and lowering "
                "max_tokens_per_batch to %d for the rest of this call.",
                len(batch),
                cost,
                self.max_tokens,
            )
            half = len(batch) // 2
            self._execute(batch[:half], results)
            self._execute(batch[half:], results)
            return
        # Not an item's error (a bug, a broken device): it propagates, whatever on_error says.
        raise failure

    def _learn(self, cost: int, seconds: float) -> None:
        if self.costs is None:
            return
        self.costs.add(cost, seconds)
        measured = self.costs.overhead()
        if measured is not None:
            self.batch_overhead = min(round(measured), self.max_tokens)
            self.stats.batch_overhead = self.batch_overhead

    def _store(
        self, batch: list[Features], pooled: torch.Tensor, results: dict[int, torch.Tensor | LCOInputError]
    ) -> None:
        for features, embedding in zip(batch, pooled, strict=True):
            if not _is_finite(embedding):
                error = LCOEmbeddingError(
                    "the model produced NaN or infinite values for this input; float16 overflows easily: use "
                    "bfloat16 or float32.",
                    features.index,
                )
                self._fail(features.index, error, results)
                continue
            results[features.index] = embedding

    @staticmethod
    def _fail(index: int, error: LCOEmbeddingError, results: dict[int, Any]) -> None:
        results[index] = error


def _is_finite(output: torch.Tensor | dict[str, torch.Tensor]) -> bool:
    """True when an item's output (a tensor, or a dict of them) holds no NaN or infinite value."""
    tensors = output.values() if isinstance(output, dict) else (output,)
    return all(not t.is_floating_point() or bool(torch.isfinite(t).all()) for t in tensors)


def _outcome(index: int, result: Any) -> Outcome:
    if isinstance(result, LCOInputError | LCOEmbeddingError):
        return Outcome(index, None, result)
    return Outcome(index, result, None)


def _item_error(index: int, error: LCOInputError) -> LCOInputError:
    return error if error.index == index else error.at(index)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
