"""Embed a corpus into an output folder, resumably and exactly once: the job behind ``lco-embed encode``.

:func:`encode_corpus` plans the inputs (:mod:`.records`), opens or resumes the output folder (:mod:`.store`),
streams the records through a :class:`Runner` (this process's embedder, or Ray actors, which the caller injects) and
commits a shard every ``shard_size`` input positions. A resumed run refuses a folder made with another model, other
options or changed inputs; the comparison happens before the model is loaded where it can.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np

from lco_embedding.core.errors import LCOError
from lco_embedding.corpus.description import describe_embedder, model_name
from lco_embedding.corpus.manifest_folder import FORMAT, FORMAT_VERSION, now
from lco_embedding.corpus.precision import PRECISIONS, Precision, arrow_type, calibrate
from lco_embedding.corpus.records import (
    InputSpec,
    Record,
    duplicate_ids,
    extra_columns,
    iter_records,
    output_name,
    plan_inputs,
)
from lco_embedding.corpus.shards import SEGMENT_COLUMNS, Shard, fingerprinted, write_outcomes
from lco_embedding.corpus.stores import Store, is_store_uri, open_store
from lco_embedding.segments.spec import SegmentSpec

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SHARD_SIZE",
    "JobEvents",
    "LocalRunner",
    "OutputMismatchError",
    "Runner",
    "RunnerJob",
    "RunSummary",
    "describe_embedder",
    "encode_corpus",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "LCO-Embedding/LCO-Embedding-Omni-3B"
DEFAULT_SHARD_SIZE = 10_000
"""Input positions per shard: the most work a kill can lose."""
JobEvents = Callable[[str, int], None]
"""Called at each point of a run: ``("start", 0)`` before the model loads, ``("record", n)`` after this run's n-th
record (before any commit it completes), ``("commit", n)`` right after its n-th shard commit; in an update also
``("fingerprint", n)`` after planning read its n-th changed item and ``("update", 0)`` right before the update's
commit. For progress reporting, or for tests that stop the job at a known point."""


class OutputMismatchError(LCOError, ValueError):
    """The output folder holds a run made with another model, other options or other inputs."""


class RunnerJob(Protocol):
    """One run's embedding side, as :func:`encode_corpus` drives it."""

    def describe(self, prompt_name: str | None, prompt: str | None) -> dict[str, Any]:
        """What the run's output depends on (model, dimension, prompts, settings), for the manifest."""
        ...

    def outcomes(self, records: Iterable[Record], **encode_kwargs: Any) -> Iterator[tuple[Record, Any, str | None]]:
        """``(record, embedding, None)`` or ``(record, None, reason)`` for every record, in order (with
        ``segment=`` among the keywords, the embedding is the record's
        :class:`~lco_embedding.segments.SourceSegments`)."""
        ...


class Runner(Protocol):
    """Where a corpus job's records are embedded: this process (:class:`LocalRunner`, the default), or Ray actors
    (:class:`lco_embedding.distributed.RayRunner`)."""

    def start(
        self,
        model: LCOEmbedder | str,
        *,
        revision: str | None,
        device: str | None,
        dtype: str | None,
        embedder_kwargs: dict[str, Any] | None,
    ) -> RunnerJob:
        """Load what embeds the records (after the output folder was checked)."""
        ...


class LocalRunner:
    """Embeds a corpus job's records in this process, with one :class:`~lco_embedding.LCOEmbedder`."""

    def start(
        self,
        model: LCOEmbedder | str,
        *,
        revision: str | None,
        device: str | None,
        dtype: str | None,
        embedder_kwargs: dict[str, Any] | None,
    ) -> RunnerJob:
        """The model itself, or the one loaded from its name."""
        return _LocalJob(_load(model, revision, device, dtype, embedder_kwargs))


@dataclass
class _LocalJob:
    embedder: LCOEmbedder

    def describe(self, prompt_name: str | None, prompt: str | None) -> dict[str, Any]:
        return describe_embedder(self.embedder, prompt_name, prompt)

    def outcomes(self, records: Iterable[Record], **encode_kwargs: Any) -> Iterator[tuple[Record, Any, str | None]]:
        return _outcomes(self.embedder, records, **encode_kwargs)


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
        resumed_from: The position this run started at (0 for a fresh run).
        seconds: Wall time of this run's embedding loop.
        already_complete: The folder was complete before this run; nothing was done.
        duplicate_ids: Records whose id an earlier record of the inputs already has (kept only with
            ``allow_duplicate_ids=True``; refused otherwise).
        update: For a run on a store that already held a run (an update in place,
            :mod:`lco_embedding.corpus.update`): items per kind (``new``, ``changed``, ``unchanged``, ``moved``,
            ``duplicate``, ``deleted``) and ``embed`` (items the model embedded) and ``copy`` (items whose stored
            vectors were copied); None for a fresh or resumed run.
        dry_run: The update was only planned; nothing was written.
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

    @property
    def processed(self) -> int:
        """Positions this run committed."""
        return self.done - self.resumed_from

    @property
    def items_per_second(self) -> float:
        """This run's throughput."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def encode_corpus(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: LCOEmbedder | str = DEFAULT_MODEL,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    embedder_kwargs: dict[str, Any] | None = None,
    precision: Precision = "float32",
    normalize: bool = True,
    prompt: str | None = None,
    prompt_name: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 32,
    max_tokens_per_batch: int | None = None,
    num_workers: int | None = None,
    overwrite: bool = False,
    allow_duplicate_ids: bool = False,
    show_progress_bar: bool | None = None,
    stdin: IO[str] | None = None,
    on_failure: Callable[[dict[str, Any]], None] | None = None,
    runner: Runner | None = None,
    segment: SegmentSpec | None = None,
    events: JobEvents | None = None,
    dry_run: bool = False,
    keep_deleted: bool = False,
) -> RunSummary:
    """Embed files, folders, tables and stdin lines into Parquet shards in ``out``; resume where a run stopped.

    Args:
        inputs: Files, folders, tables (``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``) and ``"-"`` for text lines
            on ``stdin`` (see :mod:`lco_embedding.corpus.records`).
        out: The output folder (created if missing).
        model: A loaded :class:`LCOEmbedder`, or a hub id or folder to load.
        revision, device, dtype, quantization: Passed to ``LCOEmbedder`` when ``model`` is a name.
        embedder_kwargs: Other ``LCOEmbedder`` arguments when ``model`` is a name.
        precision: ``float32``, ``int8`` or ``binary`` (see :mod:`lco_embedding.corpus.precision`).
        normalize: L2-normalise the embeddings (default True).
        prompt, prompt_name: An instruction put in front of every item, as in ``encode``.
        shard_size: Input positions per shard (failed items included).
        batch_size, max_tokens_per_batch, num_workers: As in ``encode``; they do not change the embeddings, so
            a resumed run may use other values.
        overwrite: Delete a previous run's files in ``out`` and start over.
        allow_duplicate_ids: Keep records whose id another record has (counted in the summary). Default: refuse
            the job before the model loads, naming the ids and where they are.
        show_progress_bar: Default: shown when this module logs at INFO or lower.
        stdin: Where ``"-"`` reads from (default ``sys.stdin``).
        on_failure: Called with each failed item's ``errors.jsonl`` entry as it happens.
        runner: Where the records are embedded: this process (default, :class:`LocalRunner`), or Ray actors
            (``lco_embedding.distributed.RayRunner(RayOptions(...))``: the output is the same; ``model`` must then
            be a name, each actor loads it, and ``device`` defaults to ``cuda`` on workers with GPUs).
        segment: Cut long audio, video and text into segments (:class:`~lco_embedding.segments.SegmentSpec`):
            one row per segment, with ``segment``, ``start`` and ``end`` columns (seconds for audio and video,
            character offsets for text, null for items embedded whole); a record's segments are committed
            together, in its shard, or not at all.
        events: Called at each point of the run (:data:`JobEvents`).
        dry_run: On a store that already holds a run: plan the update and return it (``RunSummary.update``),
            writing nothing.
        keep_deleted: On such a store: keep the rows of items the inputs no longer have.

    A store that already holds a finished run (or an unfinished one whose inputs changed) is updated in place
    (:mod:`lco_embedding.corpus.update`): only new and changed content is embedded, moved and duplicated content
    reuses its stored vectors, deleted items' rows go, and one commit makes the update visible. A changed model,
    revision, dtype, quantization, prompt, setting or option is still refused.

    Returns:
        A :class:`RunSummary`.

    Raises:
        OutputMismatchError: ``out`` holds a run made with another model, other options or changed inputs.
        ValueError: Bad inputs or arguments (nothing is written).
        RuntimeError: Another process is writing to ``out``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    if precision != "float32" and is_store_uri(out):
        raise ValueError(
            f"precision {precision!r} is for Parquet folders: LanceDB and Milvus keep float32 vectors and compress "
            "them in their index (lco-embed index), so leave --precision at float32 with a store."
        )
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size}.")
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    stop_at: JobEvents = events or (lambda event, count: None)
    specs = plan_inputs([str(i) for i in inputs])
    repeats, examples = duplicate_ids(specs)
    if repeats and not allow_duplicate_ids:
        raise ValueError(_duplicates_message(repeats, examples))
    options = {"precision": precision, "normalize": normalize, "shard_size": shard_size}
    if segment is not None:
        options["segment"] = segment.to_dict()
    folder = open_store(out)
    folder.lock()
    try:
        if quantization is not None:
            embedder_kwargs = {**(embedder_kwargs or {}), "quantization": quantization}
        known = {"model": _model_entry(model, revision, embedder_kwargs), "options": options}
        known["settings"] = _settings_entry(model, embedder_kwargs)
        stored = _opened(folder, known, overwrite)
        inputs_key = [_input_key(spec) for spec in specs]
        start = _Start(runner or LocalRunner(), model, revision, device, dtype, embedder_kwargs, stop_at)
        if stored is not None and (
            stored["status"] == "complete" or stored.get("update") or stored["inputs"] != inputs_key
        ):
            work = _UpdateWork(specs, inputs_key, prompt, prompt_name, stdin, dry_run, keep_deleted)
            encode = {
                "batch_size": batch_size,
                "max_tokens_per_batch": max_tokens_per_batch,
                "num_workers": num_workers,
            }
            return _taken(_update(folder, start, work, encode, show_progress_bar, on_failure, stop_at), specs)
        if dry_run:
            raise ValueError(f"{folder.location!r} holds no finished run to update: dry_run plans an update.")
        job = start()
        description = job.describe(prompt_name, prompt)
        manifest = _new_manifest(description, specs, options)
        if folder.exists():
            _check_same(folder, {key: manifest[key] for key in _RUN_KEY})
            manifest = folder.manifest
            folder.recover()
        else:
            folder.create(manifest)
        if manifest["status"] == "complete":
            return _taken(_summary(folder, manifest, manifest["counts"]["done"], 0.0, already_complete=True), specs)
        summary = _run(
            job.outcomes,
            folder,
            manifest,
            specs,
            batch_size,
            max_tokens_per_batch,
            num_workers,
            show_progress_bar,
            stdin,
            on_failure,
            stop_at,
        )
        summary.duplicate_ids = repeats
        return _taken(summary, specs)
    finally:
        folder.close()


def _taken(summary: RunSummary, specs: list[InputSpec]) -> RunSummary:
    """The summary with the folders' files that were not taken (no modality reads their type)."""
    summary.not_taken = [path for spec in specs for path in spec.skipped]
    if summary.not_taken:
        kinds = sorted({os.path.splitext(path)[1].lower() or "(no extension)" for path in summary.not_taken})
        shown = ", ".join(summary.not_taken[:10]) + (", ..." if len(summary.not_taken) > 10 else "")
        logger.warning(
            "Not taken: %d file(s) of a type no modality reads (%s): %s. `lco-embed encode --help` lists the types "
            "it reads.",
            len(summary.not_taken),
            ", ".join(kinds),
            shown,
        )
    return summary


@dataclass
class _Start:
    """Loads what embeds the records (the runner's job), when a run needs it."""

    runner: Runner
    model: LCOEmbedder | str
    revision: str | None
    device: str | None
    dtype: str | None
    embedder_kwargs: dict[str, Any] | None
    stop_at: JobEvents

    def __call__(self) -> RunnerJob:
        self.stop_at("start", 0)
        return self.runner.start(
            self.model, revision=self.revision, device=self.device, dtype=self.dtype,
            embedder_kwargs=self.embedder_kwargs,
        )  # fmt: skip


@dataclass
class _UpdateWork:
    """What an update of a store is asked to do."""

    specs: list[InputSpec]
    inputs_key: list[dict[str, Any]]
    prompt: str | None
    prompt_name: str | None
    stdin: IO[str] | None
    dry_run: bool
    keep_deleted: bool


def _update(
    folder: Store,
    start: _Start,
    work: _UpdateWork,
    encode: dict[str, Any],
    show_progress_bar: bool,
    on_failure: Callable[[dict[str, Any]], None] | None,
    stop_at: JobEvents,
) -> RunSummary:
    """Update a store that holds a run to the inputs (:mod:`lco_embedding.corpus.update`)."""
    from lco_embedding.corpus.update import apply_update, load_catalog, plan_update

    folder.recover()
    manifest = folder.manifest
    catalog = load_catalog(folder, manifest)
    plan = plan_update(work.specs, catalog, keep_deleted=work.keep_deleted, stdin=work.stdin, events=stop_at)
    if work.dry_run:
        return _summary(folder, manifest, 0, 0.0, update=plan.counts, dry_run=True)
    same_prompt = work.prompt_name is None and manifest["prompts"]["instruction"] == work.prompt
    if not plan.changes and same_prompt and not manifest.get("update") and manifest["status"] == "complete":
        return _summary(folder, manifest, 0, 0.0, already_complete=True, update=plan.counts)
    embed = None
    if plan.counts["embed"] or not same_prompt:  # the model is needed, or its prompts to check the run's
        job = start()
        description = job.describe(work.prompt_name, work.prompt)
        _check_same(folder, {key: description[key] for key in ("model", "dimension", "prompts", "settings")})
        segment = manifest["options"].get("segment")
        kwargs = {
            "prompt": manifest["prompts"]["instruction"],
            "normalize_embeddings": manifest["options"]["normalize"],
            **encode,
            **({"segment": SegmentSpec(**segment)} if segment is not None else {}),
        }
        embed = functools.partial(job.outcomes, **kwargs)
    manifest["inputs"] = work.inputs_key
    manifest["ignored_files"] = {spec.argument: spec.ignored for spec in work.specs if spec.ignored}
    seconds = apply_update(
        folder, manifest, plan, work.specs, embed, show_progress_bar=show_progress_bar, on_failure=on_failure,
        events=stop_at,
    )  # fmt: skip
    return _summary(folder, folder.manifest, 0, seconds, update=plan.counts)


def _duplicates_message(repeats: int, examples: list[tuple[str, list[str]]]) -> str:
    listed = "\n  ".join(f"{value!r}: {', '.join(where[:4])}" for value, where in examples)
    return (
        f"{repeats:,} record(s) repeat an id another record already has; ids must be unique:\n  {listed}\n"
        "Fix the ids (or leave the id column empty to use where each record came from), or pass "
        "--allow-duplicate-ids (allow_duplicate_ids=True) to keep them."
    )


def _model_entry(model: LCOEmbedder | str, revision: str | None, embedder_kwargs: dict[str, Any] | None) -> dict:
    """What the manifest records of the model before it is loaded."""
    quantization = (embedder_kwargs or {}).get("quantization") if isinstance(model, str) else model.quantization
    return {"name": model_name(model), "revision": _revision(model, revision), "quantization": quantization}


def _settings_entry(model: LCOEmbedder | str, embedder_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The settings that decide the embeddings, as far as they are known before the model loads: all of a loaded
    model's; of a name, those given and the given preset's (both win over the checkpoint's saved settings)."""
    from lco_embedding.pipeline.settings import PRESETS, EmbedderSettings

    if not isinstance(model, str):
        return model.embedder_settings.saved()
    given = {name: value for name, value in (embedder_kwargs or {}).items() if name in EmbedderSettings.SAVED}
    return {**PRESETS.get(given.get("preset"), {}), **given}


def _opened(folder: Store, known: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """Check an existing output folder against what is known before the model loads (or clear it with
    ``overwrite``); its manifest, or None for a new (or cleared) folder.

    Raises:
        OutputMismatchError: The folder holds another run.
        ValueError: The folder holds files but no manifest.
    """
    if folder.exists():
        if overwrite:
            folder.clear()
            return None
        _check_format(folder)
        _check_same(folder, known)
        return folder.manifest
    leftovers = folder.leftovers()
    if leftovers and overwrite and folder.capabilities.replaces_foreign_data:  # a table or collection is replaced whole
        folder.clear()
    elif leftovers and not folder.capabilities.replaces_foreign_data:
        raise ValueError(
            f"{folder.location!r} holds files ({', '.join(leftovers[:5])}) but no manifest.json: it is not an "
            "lco-embed output folder. Give an empty or new folder for --out."
        )
    elif leftovers:
        raise ValueError(
            f"{folder.location!r} holds {', '.join(leftovers[:5])} but no manifest: it is not an lco-embed output. "
            "Give another table or collection for --out, or pass --overwrite (overwrite=True) to replace it."
        )
    return None


def _check_format(folder: Store) -> None:
    """An unfinished run of an earlier format is not resumed: its ids and sources are numbered differently."""
    manifest = folder.manifest
    if manifest.get("format_version") != FORMAT_VERSION and manifest.get("status") != "complete":
        raise OutputMismatchError(
            f"{folder.location!r} holds an unfinished run written by an earlier lco-embedding (output format "
            f"{manifest.get('format_version')}, now {FORMAT_VERSION}: table rows are now named by their line "
            "number); it cannot be resumed. Pass --overwrite (overwrite=True) to start over."
        )


def _summary(
    folder: Store,
    manifest: dict[str, Any],
    start: int,
    seconds: float,
    already_complete: bool = False,
    duplicate_ids: int = 0,
    update: dict[str, int] | None = None,
    dry_run: bool = False,
) -> RunSummary:
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
    )


# ---------------------------------------------------------------------------------------- the run's identity
_RUN_KEY = ("model", "dimension", "options", "prompts", "settings", "inputs")
"""Manifest entries that must match for a run to resume in a folder."""


def _revision(model: LCOEmbedder | str, revision: str | None) -> str | None:
    return revision if isinstance(model, str) else model.revision


def _input_key(spec: InputSpec) -> dict[str, Any]:
    entry = spec.to_json()
    del entry["ignored"]  # files that are not embedded do not move positions
    return entry


def _load(
    model: LCOEmbedder | str,
    revision: str | None,
    device: str | None,
    dtype: str | None,
    embedder_kwargs: dict[str, Any] | None,
) -> LCOEmbedder:
    from lco_embedding.embedder import LCOEmbedder

    if isinstance(model, LCOEmbedder):
        return model
    return LCOEmbedder(model, revision=revision, device=device, dtype=dtype, **(embedder_kwargs or {}))


def _new_manifest(description: dict[str, Any], specs: list[InputSpec], options: dict[str, Any]) -> dict[str, Any]:
    from lco_embedding.core.environment import versions

    total = None if any(spec.items is None for spec in specs) else sum(spec.items or 0 for spec in specs)
    columns = {output_name(name): kind for name, kind in extra_columns(specs).items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "status": "running",
        "created": now(),
        "updated": now(),
        "model": description["model"],
        "dimension": description["dimension"],
        "options": options,
        "prompts": description["prompts"],
        "settings": description["settings"],
        "inputs": [_input_key(spec) for spec in specs],
        "ignored_files": {spec.argument: spec.ignored for spec in specs if spec.ignored},
        "columns": {
            "id": "string",
            "source": "string",
            "modality": "string",
            "embedding": str(arrow_type(options["precision"], description["dimension"])),
            **(SEGMENT_COLUMNS if options.get("segment") else {}),
            **columns,
        },
        "int8_ranges": None,
        "counts": {"total": total, "done": 0, "embedded": 0, "failed": 0},
        "shards": [],
        "errors_bytes": 0,
        "seconds": 0.0,
        "versions": versions(),
    }


def _differences(before: Any, now_: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(now_, dict):
        found = []
        for key in sorted(set(before) | set(now_), key=str):
            found += _differences(before.get(key), now_.get(key), f"{path}.{key}" if path else str(key))
        return found
    if isinstance(before, list) and isinstance(now_, list) and len(before) == len(now_):
        pairs = enumerate(zip(before, now_, strict=True))
        return [found for i, (a, b) in pairs for found in _differences(a, b, f"{path}[{i}]")]
    return [] if before == now_ else [f"{path}: {before!r} in the folder, {now_!r} now"]


def _check_same(folder: Store, wanted: dict[str, Any]) -> None:
    stored = {key: folder.manifest.get(key) for key in wanted}
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(stored[key], dict):
            stored[key] = {k: stored[key].get(k) for k in value}  # compare what is known at this stage
    differences = _differences(stored, wanted)
    if differences:
        listed = "\n  ".join(differences[:10])
        raise OutputMismatchError(
            f"{folder.location!r} holds embeddings made with another model, other options or other inputs:\n  "
            f"{listed}\nRe-run with the same model, options and inputs to resume it, choose another output "
            "folder, or pass --overwrite (overwrite=True) to delete it and start over."
        )


# --------------------------------------------------------------------------------------------------- the run
def _outcomes(
    embedder: LCOEmbedder, records: Iterable[Record], **encode_kwargs: Any
) -> Iterator[tuple[Record, np.ndarray | None, str | None]]:
    """``(record, embedding, None)`` or ``(record, None, reason)`` for every record, in order.

    Only records with an item go to the model, numbered in the order they are fed; its outcomes come back in that
    order, one each, so they pair up with the records in flight.
    """
    in_flight: deque[tuple[Record, int | None]] = deque()
    segment = encode_kwargs.pop("segment", None)

    def feed() -> Iterator[Any]:
        fed = 0
        for record in records:
            in_flight.append((record, None if record.error is not None else fed))
            if record.error is None:
                fed += 1
                yield record.item

    pipeline = embedder.pipeline(segment=segment, **encode_kwargs)
    # One outcome per fed record: its embedding, or its segments (a SourceSegments), or its error.
    stream: Iterator[Any] = pipeline.outcomes(feed()) if segment is None else pipeline.segment_outcomes(feed())
    for outcome in stream:
        while True:
            record, number = in_flight.popleft()
            if number is None:
                yield record, None, record.error  # failed before the model: never fed
                continue
            if number != outcome.index:
                raise RuntimeError(f"outcome {outcome.index} arrived where item {number} was due.")
            result = outcome.embedding if segment is None else outcome
            yield (
                record,
                result if outcome.error is None else None,
                None if outcome.error is None else outcome.error.reason,
            )
            break
    while in_flight:
        record, number = in_flight.popleft()
        if number is not None:
            raise RuntimeError(f"no outcome came for item {number} ({record.id}).")
        yield record, None, record.error


def _run(
    produce: Callable[..., Iterator[tuple[Record, Any, str | None]]],
    folder: Store,
    manifest: dict[str, Any],
    specs: list[InputSpec],
    batch_size: int,
    max_tokens_per_batch: int | None,
    num_workers: int | None,
    show_progress_bar: bool,
    stdin: IO[str] | None,
    on_failure: Callable[[dict[str, Any]], None] | None,
    stop_at: JobEvents,
) -> RunSummary:
    from tqdm.auto import tqdm

    options, counts = manifest["options"], manifest["counts"]
    size, precision, dimension = options["shard_size"], options["precision"], manifest["dimension"]
    columns = extra_columns(specs)
    start = counts["done"]
    seconds_before = manifest.get("seconds", 0.0)
    began = time.perf_counter()
    segment = options.get("segment")
    segmented = segment is not None
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
        manifest["seconds"] = round(seconds_before + time.perf_counter() - began, 3)
        if final:
            manifest["status"] = "complete"
        if shard.last >= shard.start:
            entry = {"index": shard.index, "start": shard.start, "end": shard.last + 1, "row": shard.row}
            entry.update(rows=len(shard.ids), failed=len(shard.errors))
            table = shard.table(precision, dimension, manifest["int8_ranges"])
            folder.commit_shard(manifest, entry, table, shard.errors, shard.catalog())
        else:
            folder.write_manifest(manifest)
        shard = Shard(shard.index + 1, shard.last + 1, size, columns, segmented, counts["embedded"])
        commits += 1
        stop_at("commit", commits)

    outcomes = produce(
        fingerprinted(iter_records(specs, start=start, stdin=stdin)),
        prompt=manifest["prompts"]["instruction"],
        batch_size=batch_size,
        normalize_embeddings=options["normalize"],
        max_tokens_per_batch=max_tokens_per_batch,
        num_workers=num_workers,
        **({"segment": SegmentSpec(**segment)} if segmented else {}),
    )
    with tqdm(
        total=counts["total"], initial=start, unit="item", desc="Embedding", disable=not show_progress_bar
    ) as bar:
        write_outcomes(outcomes, lambda: shard, lambda: commit(final=False), stop_at, on_failure, bar)
        commit(final=True)
    if counts["failed"]:
        logger.info("%d of %d items failed: see %s", counts["failed"], counts["done"], folder.errors_location)
    return _summary(folder, manifest, start, time.perf_counter() - began)
