"""What one corpus run did (:class:`RunSummary`), made from the output's committed manifest."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lco_embedding.corpus.input_plan import InputSpec
from lco_embedding.corpus.store_roles import StoreReader

__all__ = ["RunSummary", "summary_of", "with_not_taken"]

logger = logging.getLogger("lco_embedding.corpus.job")


@dataclass
class RunSummary:
    """What one :func:`encode_corpus` call did.

    Attributes:
        out: The output folder (a ``Path``), or the store's target (``lancedb://...``, ``milvus://...``).
        errors_at: Where the failed items are listed.
        total: Input positions in all inputs (None while stdin's length is unknown).
        done: Positions committed, by this run and earlier ones.
        embedded: Rows in the shards.
        failed: Items in ``errors.jsonl``.
        partial: Of those, documents embedded in part: some pages failed (named in their entry), the others have
            rows.
        resumed_from: The position this run started at (0 for a fresh run).
        seconds: Wall time of this run's embedding loop.
        already_complete: The folder was complete before this run; nothing was done.
        duplicate_ids: Records whose id an earlier record of the inputs already has (kept only with
            ``allow_duplicate_ids=True``; refused otherwise).
        update: For a run on a store that already held a run (an update in place,
            :mod:`lco_embedding.corpus.update`): items per kind (``new``, ``changed``, ``unchanged``, ``moved``,
            ``duplicate``, ``deleted``) and ``embed`` (items the model embedded) and ``copy`` (items whose stored
            vectors were copied), and ``pages_kept`` where changed PDFs kept the vectors of unchanged pages; None for
            a fresh or resumed run.
        dry_run: The update was only planned; nothing was written.
        segmented: The output has a row per segment or page (``segment``, ``start``, ``end`` columns): with
            segments asked for, or inputs holding PDFs; ``embedded`` then counts rows.
        not_taken: Files of the input folders that were not embedded because no modality reads their type (the
            manifest's ``ignored_files`` counts them by extension).
    """

    out: Path | str
    total: int | None
    done: int
    embedded: int
    failed: int
    resumed_from: int
    seconds: float
    already_complete: bool = False
    duplicate_ids: int = 0
    errors_at: str = ""
    update: dict[str, int] | None = None
    dry_run: bool = False
    not_taken: list[str] = field(default_factory=list)
    segmented: bool = False
    partial: int = 0

    @property
    def processed(self) -> int:
        """Positions this run committed."""
        return self.done - self.resumed_from

    @property
    def items_per_second(self) -> float:
        """This run's throughput."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def summary_of(
    folder: StoreReader,
    manifest: dict[str, Any],
    start: int,
    seconds: float,
    already_complete: bool = False,
    duplicate_ids: int = 0,
    update: dict[str, int] | None = None,
    dry_run: bool = False,
) -> RunSummary:
    """The summary of a run on ``folder`` from its ``manifest``: what is committed, this run's start and time."""
    counts = manifest["counts"]
    return RunSummary(
        out=folder.output,
        total=counts["total"],
        done=counts["done"],
        embedded=counts["embedded"],
        failed=counts["failed"],
        resumed_from=start,
        seconds=seconds,
        already_complete=already_complete,
        duplicate_ids=duplicate_ids,
        errors_at=folder.errors_location,
        update=update,
        dry_run=dry_run,
        segmented=manifest["options"].get("segment") is not None,
        partial=counts.get("partial", 0),
    )


def with_not_taken(summary: RunSummary, specs: list[InputSpec]) -> RunSummary:
    """The summary with the folders' files that were not taken (no modality reads their type)."""
    summary.not_taken = [path for spec in specs for path in spec.skipped]
    if summary.not_taken:
        kinds = sorted({os.path.splitext(path)[1].lower() or "(no extension)" for path in summary.not_taken})
        shown = ", ".join(summary.not_taken[:10]) + (", ..." if len(summary.not_taken) > 10 else "")
        logger.warning(
            "Not taken: %d file(s) of a type no modality reads (%s): %s. Each is a failed item in the errors file; "
            "`lco-embed encode --help` lists the types it reads.",
            len(summary.not_taken),
            ", ".join(kinds),
            shown,
        )
    return summary
