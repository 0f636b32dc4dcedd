"""Dynamic batching: the items of concurrent requests merged into forward passes by tokens, after a short wait.

A request's items are featurized in a thread pool as they arrive (media fetched, loaded and preprocessed; chat
template; processor), so each knows its exact token count. They then join one queue. The model runs in a single
thread: when the queue's oldest item has waited ``max_wait_ms`` (or the queue holds a full forward pass), it takes
a window of queued items under the engine's window rule, has the engine plan batches of least padding under the
token budget, runs them through the engine (which splits a batch that runs out of memory) and hands every item its
embedding. Under load the model is always busy and batches fill up by
themselves; when idle, an item waits at most ``max_wait_ms``.

Admission is bounded: items admitted and not yet answered may not exceed ``max_queue_items``; beyond it a request
is refused (429) rather than queued. Items of a request whose client has gone are dropped before they reach the
model; items already in a running batch finish, and the others in that batch are not affected.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lco_embedding.core.errors import LCOEmbeddingError, LCOError, LCOInputError
from lco_embedding.core.modalities import TEXT
from lco_embedding.pipeline.batching import padded_tokens
from lco_embedding.pipeline.featurize import Features
from lco_embedding.segments.result import segment_place
from lco_embedding.segments.split import split_item
from lco_embedding.serving.inputs import SEGMENT, RequestItemError, resolve_media
from lco_embedding.serving.metrics import ServerMetrics
from lco_embedding.serving.settings import ServerSettings

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["DynamicBatcher", "Embedded", "QueueFull", "RequestTooLarge", "Ticket"]

logger = logging.getLogger(__name__)


class QueueFull(LCOError, RuntimeError):
    """The server holds as many items as it may; the client should retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"the server is busy; retry after {retry_after} s.")


class RequestTooLarge(LCOError, ValueError):
    """A request the server could never admit (more items or tokens than its queue holds): 413, naming the limit."""


@dataclass
class Embedded:
    """One request's answer from the batcher.

    Attributes:
        vectors: Raw float32 embeddings: one per item in item order, except that an item with a ``"segment"``
            spec has one per segment.
        tokens: Tokens the model saw.
        places: What each embedding is: ``(item index, None)``, or ``(item index, {"segment", "start", "end"})``.
        cut: What preprocessing cut from each embedded piece (:mod:`lco_embedding.core.notes`), in the same order.
    """

    vectors: list[Any]
    tokens: int
    places: list[tuple[int, dict[str, Any] | None]]
    cut: list[dict[str, float]]


@dataclass
class Ticket:
    """One request's stake in the queue; ``cancelled`` once its client has gone."""

    cancelled: bool = False


@dataclass
class _Job:
    """One item of a request on its way to the model: its features once featurized, and where its answer goes."""

    ticket: Ticket
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    features: Features | None = None
    enqueued: float = 0.0


@dataclass
class _TextRequest:
    """A request of text items only, waiting for the text thread: featurized with the others queued with it."""

    texts: list[str]
    prompt: str | None
    jobs: list[_Job]


def _deliver(answers: list[tuple[_Job, Any]]) -> None:
    """Hand each job its result (an embedding, or an exception): one call into each event loop, not one per item."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
    for job, result in answers:
        by_loop.setdefault(job.loop, []).append((job.future, result))
    for loop, pairs in by_loop.items():
        loop.call_soon_threadsafe(_set_results, pairs)


def _set_results(pairs: list[tuple[asyncio.Future, Any]]) -> None:
    for future, result in pairs:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


class DynamicBatcher:
    """Owns the model's forward pass for a server; requests call :meth:`embed` from the event loop.

    Args:
        embedder: The loaded :class:`~lco_embedding.LCOEmbedder`.
        settings: Batching and limits.
        metrics: Where batch sizes, queue depth and cancellations are counted.
        model_thread: Run the model's loop in a thread of its own (default). False: the owner calls
            :meth:`run_model` on a thread of its choice (:class:`~lco_embedding.serving.runner.MainThreadRunner`
            runs it on the main thread).
    """

    def __init__(
        self, embedder: LCOEmbedder, settings: ServerSettings, metrics: ServerMetrics, *, model_thread: bool = True
    ) -> None:
        self.embedder, self.settings, self.metrics = embedder, settings, metrics
        self.pipeline = embedder.pipeline(
            max_tokens_per_batch=settings.max_tokens_per_batch, batch_size=settings.max_batch_items
        )
        self.engine = self.pipeline.engine()
        self.featurizer = self.pipeline.featurizer  # requests bring their own prompts
        self.pool = ThreadPoolExecutor(settings.featurize_workers, thread_name_prefix="lco-serve-featurize")
        self._pending: deque[_Job] = deque()
        self._pending_tokens = 0
        self._condition = threading.Condition()
        self._texts: deque[_TextRequest] = deque()
        self._texts_ready = threading.Condition()
        self._admitted = 0
        self._ids = itertools.count()
        self._stopping = False
        self._items_per_second = 0.0
        self._model_running = threading.Event()
        self._model_done = threading.Event()
        self._thread = threading.Thread(target=self.run_model, name="lco-serve-batcher", daemon=True)
        self._text_thread = threading.Thread(target=self._text_loop, name="lco-serve-text", daemon=True)
        if model_thread:
            self._thread.start()
        self._text_thread.start()

    @property
    def running(self) -> bool:
        """True while the model's loop runs."""
        return self._model_running.is_set() and not self._stopping

    def run_model(self) -> None:
        """The model's loop: take windows of queued items, run them, answer them; returns once :meth:`close`
        is called. Runs in the batcher's own thread, or (``model_thread=False``) on the caller's."""
        self._model_running.set()
        try:
            self._loop()
        finally:
            self._model_running.clear()
            self._model_done.set()

    # ------------------------------------------------------------------------------------------ admission
    def admit(self, count: int) -> None:
        """Reserve room for ``count`` items.

        Raises:
            RequestTooLarge: ``count`` is above ``max_queue_items``: the request could never be admitted.
            QueueFull: The server already holds too many items to take ``count`` more now.
        """
        if count > self.settings.max_queue_items:
            raise RequestTooLarge(
                f"the request has {count:,} items and this server holds at most {self.settings.max_queue_items:,} at "
                "once (max_queue_items): send them in several requests."
            )
        with self._condition:
            if self._admitted + count > self.settings.max_queue_items:
                rate = max(self._items_per_second, 1.0)
                raise QueueFull(retry_after=max(1, round(self._admitted / rate)))
            self._admitted += count
            self.metrics.queue_items.set(self._admitted)

    def release(self, count: int) -> None:
        """Give back the room of ``count`` answered (or abandoned) items."""
        with self._condition:
            self._admitted -= count
            self.metrics.queue_items.set(self._admitted)

    # ---------------------------------------------------------------------------------------------- a request
    async def embed(self, items: list[Any], prompt: str | None, ticket: Ticket) -> Embedded:
        """Embed one request's items (:class:`Embedded`).

        A request of text items only goes to the text thread, which featurizes every text request queued with it
        in one tokenizer call; a request with media (or segments) is featurized item by item in the worker
        threads (media are fetched, decoded, cut into segments and preprocessed there).

        Raises:
            RequestItemError: An item that cannot be embedded (the one with the lowest index), or one of more than
                ``max_item_tokens`` tokens.
            RequestTooLarge: The request's tokens pass ``max_queue_tokens`` on their own.
            QueueFull: The request's tokens would pass ``max_queue_tokens`` while others wait.
        """
        loop = asyncio.get_running_loop()
        if all(isinstance(item, dict) and list(item) == [TEXT.name] for item in items):
            jobs = [_Job(ticket, loop.create_future(), loop) for _ in items]
            places: list[tuple[int, dict[str, Any] | None]] = [(index, None) for index in range(len(items))]
            with self._texts_ready:
                self._texts.append(_TextRequest([item["text"] for item in items], prompt, jobs))
                self._texts_ready.notify()
        else:
            prepared = await asyncio.gather(
                *(loop.run_in_executor(self.pool, self._featurize, i, item, prompt) for i, item in enumerate(items)),
                return_exceptions=True,
            )
            for outcome in prepared:
                if isinstance(outcome, BaseException):
                    raise outcome
            jobs, places = [], []
            for index, pieces in enumerate(prepared):
                for place, features in pieces:
                    jobs.append(_Job(ticket, loop.create_future(), loop, features))
                    places.append((index, place))
            self._enqueue(jobs)
        results = await asyncio.gather(*(job.future for job in jobs), return_exceptions=True)
        failures = [(place, r) for place, r in zip(places, results, strict=True) if isinstance(r, BaseException)]
        if failures:
            (index, place), failure = failures[0]
            if isinstance(failure, LCOInputError | LCOEmbeddingError):  # the item, not the server
                where = "" if place is None else f"segment {place['segment']}: "
                raise RequestItemError(where + failure.reason, index)
            raise next((f for _, f in failures if isinstance(f, QueueFull | RequestTooLarge)), failure)
        tokens = sum(job.features.length for job in jobs)
        return Embedded(results, tokens, places, [job.features.cut for job in jobs])

    def _featurize(self, index: int, item: Any, prompt: str | None) -> list[tuple[Any, Features]]:
        """An item's features (one, or one per segment with its place), featurized in a worker thread."""
        item = resolve_media(item, index, self.settings)
        spec = item.pop(SEGMENT, None) if isinstance(item, dict) else None
        pieces: list[tuple[Any, Any]] = [(None, item)]
        if spec is not None:
            pieces = []
            for segment in split_item(index, item, spec, self.featurizer.cut_context):
                place = segment_place(segment.number, segment.start, segment.end)
                pieces.append((place, segment.item))
        out = []
        for place, piece in pieces:
            where = "" if place is None or place["start"] is None else f"segment {place['segment']}: "
            try:
                features = self.featurizer(index, piece, None, prompt)
            except LCOInputError as e:
                raise RequestItemError(where + e.reason, index) from e
            if features.length > self.settings.max_item_tokens:
                raise RequestItemError(
                    f"{where}the item is {features.length:,} tokens once preprocessed; this server embeds at most "
                    f"{self.settings.max_item_tokens:,} per item (max_item_tokens): send smaller media, or fewer "
                    "frames (max_frames, fps) or pixels (max_pixels).",
                    index,
                )
            out.append((place, replace(features, index=next(self._ids))))
        return out

    @property
    def max_queue_tokens(self) -> int:
        """Tokens that may wait for the model (:attr:`ServerSettings.max_queue_tokens`, else 32 batch budgets)."""
        return self.settings.max_queue_tokens or 32 * self.engine.max_tokens

    def _enqueue(self, jobs: list[_Job]) -> None:
        """Queue one request's featurized jobs for the model thread; when they would take the tokens waiting past
        :attr:`max_queue_tokens` while others wait, they are answered with :class:`QueueFull` instead, and with
        :class:`RequestTooLarge` when their own tokens pass it (such a request could never be admitted)."""
        now = time.monotonic()
        tokens = sum(job.features.length for job in jobs)
        if tokens > self.max_queue_tokens:
            refused = RequestTooLarge(
                f"the request is {tokens:,} tokens once preprocessed; this server queues at most "
                f"{self.max_queue_tokens:,} (max_queue_tokens): send its items in several requests."
            )
            _deliver([(job, refused) for job in jobs])
            return
        with self._condition:
            full = bool(self._pending) and self._pending_tokens + tokens > self.max_queue_tokens
            if not full:
                for job in jobs:
                    job.enqueued = now
                self._pending.extend(jobs)
                self._pending_tokens += tokens
                self.metrics.pending_items.set(len(self._pending))
                self._condition.notify()
            rate = max(self._items_per_second, 1.0)
        if full:
            busy = QueueFull(retry_after=max(1, round(len(self._pending) / rate)))
            _deliver([(job, busy) for job in jobs])

    def _text_loop(self) -> None:
        """The text thread: take every text request queued, featurize them together (per prompt), queue them."""
        while True:
            with self._texts_ready:
                while not self._texts and not self._stopping:
                    self._texts_ready.wait()
                if self._stopping:
                    return
                requests = list(self._texts)
                self._texts.clear()
            by_prompt: dict[str | None, list[_TextRequest]] = {}
            for request in requests:
                by_prompt.setdefault(request.prompt, []).append(request)
            for prompt, group in by_prompt.items():
                self._featurize_texts(group, prompt)

    def _featurize_texts(self, requests: list[_TextRequest], prompt: str | None) -> None:
        pairs = [(next(self._ids), text) for request in requests for text in request.texts]
        try:
            outcomes = self.featurizer.featurize_batch(pairs, "text", prompt)
        except Exception as e:  # a fault of the server, not of an item: these requests get a 500
            logger.exception("Featurizing text failed")
            _deliver([(job, e) for request in requests for job in request.jobs])
            return
        ready: list[list[_Job]] = []
        refused: list[tuple[_Job, Any]] = []
        position = 0
        for request in requests:
            mine = outcomes[position : position + len(request.jobs)]
            position += len(request.jobs)
            bad = next((i for i, o in enumerate(mine) if isinstance(o, LCOInputError)), None)
            if bad is not None:  # the request is answered with its first bad item; none of its items reaches the model
                error = RequestItemError(mine[bad].reason, bad)
                refused.extend((job, error) for job in request.jobs)
                continue
            for job, features in zip(request.jobs, mine, strict=True):
                job.features = features
            ready.append(request.jobs)
        if refused:
            _deliver(refused)
        for jobs in ready:  # each request admitted (or refused) on its own tokens
            self._enqueue(jobs)

    # ------------------------------------------------------------------------------------------- the model
    def _take_window(self) -> list[_Job] | None:
        """Wait for work, then for the batch to fill (or the oldest item's wait to end); pop a window of jobs."""
        settings = self.settings
        with self._condition:
            while not self._pending and not self._stopping:
                self._condition.wait()
            if self._stopping:
                return None
            deadline = self._pending[0].enqueued + settings.max_wait_ms / 1000
            while not self._stopping:
                remaining = deadline - time.monotonic()
                full = self._pending_tokens >= self.engine.max_tokens or len(self._pending) >= settings.max_batch_items
                if remaining <= 0 or full:
                    break
                self._condition.wait(remaining)
            window: list[_Job] = []
            tokens = 0
            while self._pending:
                length = self._pending[0].features.length
                if window and self.engine.window_closes(tokens + length, len(window) + 1):
                    break
                job = self._pending.popleft()
                self._pending_tokens -= length
                if job.ticket.cancelled:
                    self.metrics.cancelled_items.inc()
                    continue
                window.append(job)
                tokens += length
            self.metrics.pending_items.set(len(self._pending))
            return window

    def _loop(self) -> None:
        while True:
            window = self._take_window()
            if window is None:
                return
            if not window:
                continue
            by_id = {job.features.index: job for job in window}
            for batch in self.engine.plan([job.features for job in window]):
                jobs = []
                for features in batch:
                    if by_id[features.index].ticket.cancelled:
                        self.metrics.cancelled_items.inc()
                    else:
                        jobs.append(by_id[features.index])
                if jobs:
                    self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            outcomes = self.pipeline.execute([job.features for job in jobs], self.engine)
        except Exception as e:  # a fault of the server, not of an item: every request of the batch gets a 500
            logger.exception("A forward pass failed")
            _deliver([(job, e) for job in jobs])
            return
        self.metrics.observe_batch(len(jobs), padded_tokens([job.features.length for job in jobs]))
        seconds = time.perf_counter() - started
        self._items_per_second = 0.8 * self._items_per_second + 0.2 * len(jobs) / max(seconds, 1e-6)
        # One outcome per job, in batch order: its row, or its item's error.
        _deliver(
            [
                (job, outcome.embedding if outcome.ok else outcome.error)
                for job, outcome in zip(jobs, outcomes, strict=True)
            ]
        )

    def close(self) -> None:
        """Stop the model thread (queued items are not answered) and the featurize workers."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        with self._texts_ready:
            self._texts_ready.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        elif self._model_running.is_set():  # the model's loop runs on its owner's thread: wait until it has left
            self._model_done.wait(timeout=30)
        self._text_thread.join(timeout=30)
        self.pool.shutdown(wait=False, cancel_futures=True)
