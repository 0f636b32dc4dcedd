"""Where featurize runs: inline, in a thread pool made for one call, or in spawned worker processes kept between
calls (each with its own copy of the featurizer, installed once).

Threads suit media: Pillow, the audio and video decoders and the tokenizer release the GIL while they work.
Processes cost a spawn and a copy of every result, and pay off only where Python itself is the limit.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Literal

from lco_embedding.pipeline.featurize import Featurizer, install_worker_featurizer

__all__ = ["WorkerType", "FeaturizeWorkers"]

WorkerType = Literal["thread", "process"]


class FeaturizeWorkers:
    """The featurize workers of one embedder: a thread pool per call, or one process pool kept until
    :meth:`close`, rebuilt when the featurizer's options change."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._key: tuple[Any, ...] | None = None

    def executor(self, count: int, kind: WorkerType, featurizer: Featurizer) -> Executor | None:
        """An executor with ``count`` workers for this call (None: featurize inline)."""
        if count == 0:
            return None
        if kind == "thread":
            return ThreadPoolExecutor(count, thread_name_prefix="lco-featurize")
        key = (count, featurizer.config_key())
        if self._pool is None or self._key != key:
            self.close()
            self._pool = ProcessPoolExecutor(
                count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=install_worker_featurizer,
                initargs=(featurizer,),
            )
            self._key = key
        return self._pool

    @staticmethod
    def release(executor: Executor | None) -> None:
        """End a call's thread pool (a process pool is kept)."""
        if isinstance(executor, ThreadPoolExecutor):
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Shut down the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._key = None
