"""Embed a corpus into a store, resumably and exactly once, or update it in place: the job behind
``lco-embed encode``.

:func:`encode_corpus` plans the inputs (:mod:`.records`), opens the output (:mod:`.stores`) and checks it against
the run (:mod:`.run_identity`: before the model loads where it can), then either starts or resumes a run — streams
the records through a :class:`~.runners.Runner` (this process's embedder, or Ray actors) and commits a shard every
``shard_size`` input positions — or, on an output that holds a run, updates it in place (:mod:`.update`). The job's
options travel as two values (:mod:`.job_options`).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from lco_embedding.corpus.input_plan import InputSpec, duplicate_ids, extra_columns, holds_documents, plan_inputs
from lco_embedding.corpus.job_options import DEFAULT_MODEL, CorpusOptions, ModelSpec, job_values
from lco_embedding.corpus.precision import calibrate
from lco_embedding.corpus.records import iter_records
from lco_embedding.corpus.run_identity import (
    RUN_KEY,
    check_same,
    duplicates_message,
    input_key,
    new_manifest,
    opened,
)
from lco_embedding.corpus.run_summary import RunSummary, summary_of, with_not_taken
from lco_embedding.corpus.runners import LocalRunner, Runner, RunnerJob
from lco_embedding.corpus.shards import Shard, fingerprinted, write_outcomes
from lco_embedding.corpus.stores import StoreWriter, open_store
from lco_embedding.corpus.targets import is_store_uri
from lco_embedding.segments.spec import SegmentSpec

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["JobEvents", "encode_corpus"]

logger = logging.getLogger(__name__)

JobEvents = Callable[[str, int], None]
"""Called at each point of a run: ``("start", 0)`` before the model loads, ``("record", n)`` after this run's n-th
record (before any commit it completes), ``("commit", n)`` right after its n-th shard commit; in an update also
``("fingerprint", n)`` after planning read its n-th changed item and ``("update", 0)`` right before the update's
commit. For progress reporting, or for tests that stop the job at a known point."""


def encode_corpus(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: ModelSpec | LCOEmbedder | str = DEFAULT_MODEL,
    options: CorpusOptions | None = None,
    runner: Runner | None = None,
    stdin: IO[str] | None = None,
    on_failure: Callable[[dict[str, Any]], None] | None = None,
    events: JobEvents | None = None,
    **keywords: Any,
) -> RunSummary:
    """Embed files, folders, tables and stdin lines into ``out`` (a folder, ``lancedb://``, ``milvus://``); resume
    where a run stopped, or update an output that holds a run in place: only new and changed content is embedded,
    moved and duplicated content reuses its stored vectors, deleted items' rows go, one commit makes it visible.

    Args:
        inputs: Files, folders, tables (``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``) and ``"-"`` for text lines on
            ``stdin`` (:mod:`lco_embedding.corpus.records`).
        out: The output (a folder is created if missing).
        model: A :class:`~.job_options.ModelSpec`, a loaded :class:`LCOEmbedder`, or a hub id or folder to load.
        options: A :class:`~.job_options.CorpusOptions`; or give its fields (``precision``, ``prompt``,
            ``segment``, ``dry_run``, ...) and the spec's (``revision``, ``device``, ``dtype``, ``quantization``,
            ``embedder_kwargs``) as keywords.
        runner: This process (default), or Ray actors (``lco_embedding.distributed.RayRunner``; ``model`` a name).
        stdin: Where ``"-"`` reads from (default ``sys.stdin``).
        on_failure: Called with each failed item's ``errors.jsonl`` entry as it happens.
        events: Called at each point of the run (:data:`JobEvents`).

    Raises:
        OutputMismatchError: ``out`` holds a run made with another model, revision, dtype, quantization, prompt,
            setting or option (pass ``overwrite=True`` to start over).
        ValueError: Bad inputs or arguments (nothing is written).
        RuntimeError: Another process is writing to ``out``.
    """
    spec, options = job_values(model, options, keywords)
    _check_precision(options, out)
    specs = plan_inputs([str(i) for i in inputs])
    options = _with_pages(options, specs)
    repeats, examples = duplicate_ids(specs)
    if repeats and not options.allow_duplicate_ids:
        raise ValueError(duplicates_message(repeats, examples))
    job = _Job(spec, options, runner or LocalRunner(), specs, stdin, on_failure, events or _no_events)
    folder = open_store(out)
    folder.lock()
    try:
        known = {**spec.known(options.use_audio_in_video), "options": options.manifest_entry()}
        stored = opened(folder, known, options.overwrite)
        if stored is not None and (stored["status"] == "complete" or stored.get("update") or
                                   stored["inputs"] != job.inputs_key):  # fmt: skip
            return with_not_taken(_update(folder, job), specs)
        if options.dry_run:
            raise ValueError(f"{folder.location!r} holds no finished run to update: dry_run plans an update.")
        summary = _start_or_resume(folder, job)
        summary.duplicate_ids = repeats
        return with_not_taken(summary, specs)
    finally:
        folder.close()


PAGES_ONLY = SegmentSpec(audio=None, video=None, text=None)
"""The segments of a job whose inputs hold PDFs and ask for none: each page a row, every other item whole."""


def _with_pages(options: CorpusOptions, specs: list[InputSpec]) -> CorpusOptions:
    """The options with :data:`PAGES_ONLY` segments when the inputs hold PDF files and no segments were asked for
    (a PDF is a container of pages: one row per page, ``start`` = ``end`` = the page number)."""
    return options.replace(segment=PAGES_ONLY) if options.segment is None and holds_documents(specs) else options


def _check_precision(options: CorpusOptions, out: str | os.PathLike[str]) -> None:
    if options.precision != "float32" and is_store_uri(out):
        raise ValueError(
            f"precision {options.precision!r} is for Parquet folders: LanceDB and Milvus keep float32 vectors and "
            "compress them in their index (lco-embed index), so leave --precision at float32 with a store."
        )


def _no_events(event: str, count: int) -> None:
    """The default :data:`JobEvents`: nothing."""


@dataclass
class _Job:
    """One call's job: its values, its inputs and its callbacks."""

    spec: ModelSpec
    options: CorpusOptions
    runner: Runner
    specs: list[InputSpec]
    stdin: IO[str] | None
    on_failure: Callable[[dict[str, Any]], None] | None
    events: JobEvents

    @property
    def inputs_key(self) -> list[dict[str, Any]]:
        """The inputs as the manifest records them."""
        return [input_key(spec) for spec in self.specs]

    def start(self) -> RunnerJob:
        """Load what embeds the records (the runner's job), when a run needs it."""
        self.events("start", 0)
        return self.runner.start(self.spec)


def _start_or_resume(folder: StoreWriter, job: _Job) -> RunSummary:
    """Start a fresh run, or resume an unfinished one on the same inputs."""
    runner_job = job.start()
    manifest = new_manifest(runner_job.describe(job.options), job.specs, job.options.manifest_entry())
    if folder.exists():
        check_same(folder, {key: manifest[key] for key in RUN_KEY})
        manifest = folder.manifest
        folder.recover()
    else:
        folder.create(manifest)
    if manifest["status"] == "complete":
        return summary_of(folder, manifest, manifest["counts"]["done"], 0.0, already_complete=True)
    return _write_run(runner_job, folder, manifest, job)


def _update(folder: StoreWriter, job: _Job) -> RunSummary:
    """Update a store that holds a run to the inputs (:mod:`lco_embedding.corpus.update`)."""
    from lco_embedding.corpus.update import apply_update, load_catalog, plan_update

    folder.recover()
    manifest, options = folder.manifest, job.options
    catalog = load_catalog(folder, manifest)
    plan = plan_update(job.specs, catalog, keep_deleted=options.keep_deleted, stdin=job.stdin, events=job.events)
    if options.dry_run:
        return summary_of(folder, manifest, 0, 0.0, update=plan.counts, dry_run=True)
    same_prompt = options.prompt_name is None and manifest["prompts"]["instruction"] == options.prompt
    if not plan.changes and same_prompt and not manifest.get("update") and manifest["status"] == "complete":
        return summary_of(folder, manifest, 0, 0.0, already_complete=True, update=plan.counts)
    embed = None
    if plan.counts["embed"] or not same_prompt:  # the model is needed, or its prompts to check the run's
        runner_job = job.start()
        description = runner_job.describe(options)
        check_same(folder, {key: description[key] for key in ("model", "dimension", "prompts", "settings")})
        embed = functools.partial(runner_job.outcomes, **options.encode_keywords(manifest))
    manifest["inputs"] = job.inputs_key
    manifest["ignored_files"] = {spec.argument: spec.ignored for spec in job.specs if spec.ignored}
    seconds = apply_update(
        folder, manifest, plan, job.specs, embed, show_progress_bar=bool(options.show_progress_bar),
        on_failure=job.on_failure, events=job.events,
    )  # fmt: skip
    return summary_of(folder, folder.manifest, 0, seconds, update=plan.counts)


def _write_run(runner_job: RunnerJob, folder: StoreWriter, manifest: dict[str, Any], job: _Job) -> RunSummary:
    """Embed the records from the first uncommitted position on and commit them a shard at a time."""
    from tqdm.auto import tqdm

    specs, stop_at = job.specs, job.events

    options, counts = manifest["options"], manifest["counts"]
    size, precision, dimension = options["shard_size"], options["precision"], manifest["dimension"]
    columns = extra_columns(specs)
    start = counts["done"]
    seconds_before = manifest.get("seconds", 0.0)
    began = time.perf_counter()
    segmented = options.get("segment") is not None
    shard = Shard(len(manifest["shards"]), start, size, columns, segmented, counts["embedded"])
    commits = 0

    def commit(final: bool) -> None:
        nonlocal shard, commits
        if precision == "int8" and manifest["int8_ranges"] is None and shard.embeddings:
            manifest["int8_ranges"] = calibrate(np.stack(shard.embeddings))
        if final and counts["total"] is None:
            counts["total"] = shard.last + 1
        counts["done"] = shard.last + 1
        counts["embedded"] += len(shard.ids)
        counts["failed"] += len(shard.errors)
        if shard.partial:
            counts["partial"] = counts.get("partial", 0) + shard.partial
        manifest["seconds"] = round(seconds_before + time.perf_counter() - began, 3)
        if final:
            manifest["status"] = "complete"
        if shard.last >= shard.start:
            entry = shard.entry()
            table = shard.table(precision, dimension, manifest["int8_ranges"])
            folder.commit_shard(manifest, entry, table, shard.errors, shard.catalog())
        else:
            folder.write_manifest(manifest)
        shard = Shard(shard.index + 1, shard.last + 1, size, columns, segmented, counts["embedded"])
        commits += 1
        stop_at("commit", commits)

    records = fingerprinted(iter_records(specs, start=start, stdin=job.stdin))
    outcomes = runner_job.outcomes(records, **job.options.encode_keywords(manifest))
    with tqdm(
        total=counts["total"], initial=start, unit="item", desc="Embedding", disable=not job.options.show_progress_bar
    ) as bar:
        write_outcomes(outcomes, lambda: shard, lambda: commit(final=False), stop_at, job.on_failure, bar)
        commit(final=True)
    if counts["failed"]:
        logger.info("%d of %d items failed: see %s", counts["failed"], counts["done"], folder.errors_location)
    return summary_of(folder, manifest, start, time.perf_counter() - began)
