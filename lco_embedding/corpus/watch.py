"""Keep a store in sync with its folders and tables as files arrive, change and go (``lco-embed encode --watch``).

:func:`watch_corpus` runs the corpus job once, then waits for changes under its inputs (``watchfiles``: the ``[watch]``
extra; ``uvicorn[standard]`` of the ``[server]`` extra installs it too) and runs it again, as an update in place
(:mod:`lco_embedding.corpus.update`), once the changed files have *settled*: a file is settled when its size and
modification time are the same at two looks in a row, one batch of changes (or one quiet interval) apart. A file
still being written keeps changing, so it is embedded once, complete, after its writer stops. Each update is one
commit: stopping the watch (Ctrl-C) at any moment leaves the store as it was after the last one.

Does not watch stdin, and runs one update at a time (changes during an update wait for the next).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from lco_embedding.corpus.catalog import stat_of

__all__ = ["QUIET_MS", "watch_corpus"]

QUIET_MS = 1000
"""How long without changes (ms) counts as one quiet look for files still settling."""
_UNSEEN = ("unseen",)


def watch_corpus(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    changes: Iterable[set[tuple[Any, str]]] | None = None,
    on_update: Callable[[Any], None] | None = None,
    **job: Any,
) -> None:
    """Embed ``inputs`` into ``out``, then keep ``out`` in sync with them until ``changes`` ends (or Ctrl-C).

    Args:
        inputs, out: As :func:`~lco_embedding.corpus.encode_corpus`'s.
        changes: Batches of ``(change, path)`` under the inputs, an empty batch for a quiet interval (default:
            ``watchfiles.watch`` on the inputs, with a quiet batch every :data:`QUIET_MS` ms).
        on_update: Called with each run's :class:`~lco_embedding.corpus.RunSummary` (the first run's too).
        **job: :func:`~lco_embedding.corpus.encode_corpus`'s other arguments (pass a loaded ``LCOEmbedder`` as
            ``model``, so that each update does not load it again).

    Raises:
        ValueError: ``-`` (stdin) among the inputs.
    """
    from lco_embedding.corpus.job import encode_corpus

    if any(str(path) == "-" for path in inputs):
        raise ValueError("--watch watches files, folders and tables; it cannot watch stdin ('-').")
    report = on_update or (lambda summary: None)
    report(encode_corpus(inputs, out, **job))
    pending: dict[str, Any] = {}
    for batch in changes if changes is not None else _watched(inputs):
        for _, path in batch:
            pending.setdefault(str(path), _UNSEEN)
        if not pending:
            continue
        looked = {path: stat_of(path) for path in pending}
        settled = all(looked[path] == before for path, before in pending.items())
        pending = looked
        if settled:
            pending = {}
            report(encode_corpus(inputs, out, **job))


def _watched(inputs: Sequence[str | os.PathLike[str]]) -> Iterator[set[tuple[Any, str]]]:
    """``watchfiles`` batches of changes under the inputs, and an empty batch after each quiet interval."""
    from lco_embedding.core.require import require

    require("watchfiles", "watch")
    import watchfiles

    yield from watchfiles.watch(
        *[os.path.abspath(path) for path in inputs], rust_timeout=QUIET_MS, yield_on_timeout=True, raise_interrupt=True
    )
