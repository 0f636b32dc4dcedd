"""``lco-embed encode``: embed files, folders, tables and stdin lines into Parquet shards, a LanceDB table or a Milvus
collection, resumably."""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from lco_embedding.cli.common import (
    audio_in_video,
    audio_in_video_option,
    is_quiet,
    loading_errors,
    model_options,
    preset_kwargs,
    quantization_option,
    segment_spec,
)
from lco_embedding.corpus.job_options import DEFAULT_SHARD_SIZE
from lco_embedding.corpus.precision import PRECISIONS

__all__ = ["encode"]

SHOWN_FAILURES = 10
"""Failures printed as they happen; the rest are only in errors.jsonl."""


@click.command(short_help="Embed files, folders, tables or stdin into Parquet, LanceDB or Milvus (resumable).")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--out",
    "-o",
    required=True,
    metavar="OUT",
    help="Output folder (Parquet shards), lancedb://PATH/TABLE or milvus://FILE.db/COLLECTION (milvus://HOST:PORT/"
    "COLLECTION for a server).",
)
@model_options
@quantization_option
@audio_in_video_option
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Most items per pass.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Token budget of one pass [default: from the device].")
@click.option("--num-workers", type=click.IntRange(min=0), help="Preprocessing workers [default: 0 on CPU, 4 on GPU].")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    show_default=True,
    help="float32, int8 (per-dimension ranges from the first shard) or binary (sign bits, 1/32 of the size).",
)
@click.option("--no-normalize", is_flag=True, help="Store raw vectors instead of L2-normalised ones.")
@click.option("--prompt", help="Instruction put in front of every item.")
@click.option("--prompt-name", help="Name of a prompt saved with the model (e.g. document).")
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=DEFAULT_SHARD_SIZE,
    show_default=True,
    help="Items per shard: the most work an interruption can lose.",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Embed on Ray actors: the RAY_ADDRESS cluster or a new local Ray, or the cluster at ADDRESS (host:port, "
    "ray://host:port, auto = the one running here). Same output.",
)
@click.option("--ray-workers", type=click.IntRange(min=1), help="Ray actors [default: one per GPU, else 1].")
@click.option(
    "--ray-gpus-per-worker", type=click.FloatRange(min=0), help="GPUs per actor [default: 1 if the cluster has GPUs]."
)
@click.option(
    "--segment",
    "segment_text",
    metavar="SPEC",
    help="Cut long media and text into segments, one row each with segment/start/end columns: e.g. "
    "audio=30s,video=30s,text=300 (seconds; tokens for text, overlapping by 50); modalities left out are embedded "
    "whole.",
)
@click.option("--overwrite", is_flag=True, help="Delete this folder's previous run and start over.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="On an output that holds a run: print what an update would do (new, changed, moved, deleted) and change "
    "nothing.",
)
@click.option("--keep-deleted", is_flag=True, help="On an update: keep the rows of items the inputs no longer have.")
@click.option(
    "--watch",
    is_flag=True,
    help="After the run, keep OUT in sync with the inputs as files arrive, change and go (an update once changed "
    "files stop changing); Ctrl-C stops it, leaving OUT as of its last update ([watch] extra).",
)
@click.option(
    "--allow-duplicate-ids",
    is_flag=True,
    help="Keep records whose id another record has (counted in the summary) instead of refusing the job.",
)
def encode(
    inputs: tuple[str, ...],
    out: str,
    model: str,
    revision: str | None,
    device: str | None,
    dtype: str,
    quantization: str | None,
    use_audio_in_video: str,
    batch_size: int,
    max_tokens: int | None,
    num_workers: int | None,
    precision: str,
    no_normalize: bool,
    prompt: str | None,
    prompt_name: str | None,
    shard_size: int,
    ray_address: str | None,
    ray_workers: int | None,
    ray_gpus_per_worker: float | None,
    segment_text: str | None,
    overwrite: bool,
    dry_run: bool,
    keep_deleted: bool,
    watch: bool,
    allow_duplicate_ids: bool,
) -> None:
    """Embed INPUT... into Parquet shards in the folder --out, with a manifest.json and an errors.jsonl; or into a
    LanceDB table (--out lancedb://PATH/TABLE) or a Milvus collection (--out milvus://FILE.db/COLLECTION, or
    milvus://HOST:PORT/COLLECTION), the same rows with their manifest and failures beside them (docs/stores.md).

    INPUT is a file, a folder (read recursively; the modality comes from the extension), a table (.jsonl,
    .ndjson, .csv, .tsv, .parquet with columns text/image/audio/video, several in a row = one mixed item, and an
    optional id; other columns are carried over), or - for text lines on stdin.

    \b
    text   .txt .md (one item per file)
    image  .jpg .jpeg .png .gif .bmp .tiff .tif .webp .avif .jfif
    audio  .mp3 .wav .ogg .flac .aac .m4a .opus .aiff .aif
    video  .mp4 .avi .mov .wmv .flv .mkv .webm .m4v .mpg .mpeg .3gp

    With --ray the items are embedded on Ray actors (local, or a cluster whose workers can read the inputs); the
    output folder is the same. Put --ray after the inputs, or write --ray=ADDRESS.

    Items that fail (corrupt or missing files, malformed rows) are listed in errors.jsonl and the run goes on.
    Re-running the same command resumes where it stopped, even after a kill; each item ends up in the output
    exactly once. On an output that holds a finished run, the same command updates it in place: only new and
    changed items are embedded, moved and duplicated files reuse their vectors, deleted ones go (--keep-deleted
    keeps them), and the update becomes visible at once (--dry-run only prints the plan). An output made with
    another model, other settings or other options is refused unless --overwrite.
    """
    from lco_embedding.corpus import CorpusOptions, ModelSpec, OutputMismatchError, encode_corpus

    runner = _runner(ray_address, ray_workers, ray_gpus_per_worker)
    segment = segment_spec(segment_text)
    if watch and (dry_run or overwrite):
        raise click.UsageError("--watch goes without --dry-run and --overwrite.")
    spec = ModelSpec(
        model, revision=revision, device=device, dtype=None if dtype == "auto" else dtype, quantization=quantization,
        settings=preset_kwargs(),
    )  # fmt: skip
    try:
        if watch and runner is None:  # loaded once for every update
            with loading_errors(model):
                spec = ModelSpec(spec.load())
        options = CorpusOptions(
            precision=precision,  # type: ignore[arg-type]
            normalize=not no_normalize,
            prompt=prompt,
            prompt_name=prompt_name,
            shard_size=shard_size,
            segment=segment,
            use_audio_in_video=audio_in_video(use_audio_in_video),
            batch_size=batch_size,
            max_tokens_per_batch=max_tokens,
            num_workers=num_workers,
            overwrite=overwrite,
            allow_duplicate_ids=allow_duplicate_ids,
            dry_run=dry_run,
            keep_deleted=keep_deleted,
            show_progress_bar=not is_quiet(),
        )
        job = dict(
            model=spec,
            options=options,
            on_failure=_FailureReport(),
            runner=runner,
            events=(click.get_current_context().obj or {}).get("job_events"),
        )
        if watch:
            from lco_embedding.corpus.watch import watch_corpus

            click.echo(f"Watching {', '.join(inputs)} (Ctrl-C to stop).", err=True)
            watch_corpus(inputs, out, on_update=lambda s: _print_summary(s, out), **job)
            return
        summary = encode_corpus(inputs, out, **job)
    except KeyboardInterrupt:
        what = "Stopped watching" if watch else "Interrupted"
        click.echo(f"\n{what}. Every committed shard is kept: re-run the same command to continue.", err=True)
        sys.exit(130)
    except (OutputMismatchError, ValueError, RuntimeError, OSError, ImportError, ConnectionError) as e:
        # Bad inputs, a refused folder, a model that cannot be loaded, a full disk: say it and stop.
        raise click.ClickException(str(e)) from e
    _print_summary(summary, out)


def _print_summary(summary: Any, out: str) -> None:
    if summary.update is not None:
        _print_update(summary, out)
        return
    if summary.already_complete:
        click.echo(
            f"Nothing to do: {out} is complete ({summary.done} items: {summary.embedded} embedded, "
            f"{summary.failed} failed). Use --overwrite to start over."
        )
        return
    if summary.resumed_from:
        click.echo(f"Resumed at item {summary.resumed_from:,}.")
    in_part = f", {summary.partial:,} of them in part: some pages" if summary.partial else ""
    failed = f"{summary.failed:,} failed{in_part} (see {summary.errors_at})" if summary.failed else "0 failed"
    repeats = f" {summary.duplicate_ids:,} records repeat an earlier id (kept)." if summary.duplicate_ids else ""
    whole = summary.done - summary.failed + summary.partial
    embedded = f"{whole:,} of {summary.done:,} items as {summary.embedded:,} rows"
    click.echo(
        f"Embedded {embedded if summary.segmented else f'{summary.embedded:,} of {summary.done:,} items'}, {failed}; "
        f"this run: {summary.processed:,} items "
        f"in {summary.seconds:.1f} s ({summary.items_per_second:.1f} items/s). Output: {summary.out}{repeats}"
    )


def _print_update(summary: Any, out: str) -> None:
    """An update's plan and what it did: ``8 items: 1 new, 0 changed, 7 unchanged, 0 deleted; embedded 1 in 0.4 s``."""
    from lco_embedding.corpus.update import plan_summary

    counts = summary.update
    planned = plan_summary(counts)
    if summary.dry_run:
        click.echo(f"Would update {out}: {planned}; would embed {counts['embed']:,}, copy {counts['copy']:,}.")
        return
    if summary.already_complete:
        click.echo(f"Nothing to do: {out} is up to date ({planned}).")
        return
    copied = f", copied {counts['copy']:,}" if counts["copy"] else ""
    failed = f"; {summary.failed:,} failed in all (see {summary.errors_at})" if summary.failed else ""
    click.echo(
        f"{planned}; embedded {counts['embed']:,}{copied} in {summary.seconds:.1f} s. Output: {summary.out} "
        f"({summary.embedded:,} rows){failed}."
    )


class _FailureReport:
    """Prints the first failures as they happen (all of them are in errors.jsonl)."""

    def __init__(self) -> None:
        self.shown = 0

    def __call__(self, failure: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        self.shown += 1
        if self.shown <= SHOWN_FAILURES:
            tqdm.write(f"failed: {failure['id']}: {failure['error']}", file=sys.stderr)
        elif self.shown == SHOWN_FAILURES + 1:
            tqdm.write("(more failures: see errors.jsonl)", file=sys.stderr)


def _runner(address: str | None, workers: int | None, gpus: float | None) -> Any:
    """Ray's runner with --ray, else None (this process)."""
    ray = _ray_options(address, workers, gpus)
    if ray is None:
        return None
    from lco_embedding.distributed import RayRunner

    return RayRunner(ray)


_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.\-]+:\d+)$")


def _ray_options(address: str | None, workers: int | None, gpus: float | None) -> Any:
    if address is None:
        if workers is not None or gpus is not None:
            raise click.UsageError("--ray-workers and --ray-gpus-per-worker go with --ray.")
        return None
    if not _ADDRESS.match(address):
        raise click.UsageError(
            f"--ray takes an optional cluster address (host:port, ray://host:port or auto); {address!r} is not one. "
            "Put --ray after the inputs, or write --ray=ADDRESS."
        )
    from lco_embedding.distributed import RayOptions

    return RayOptions(address=None if address == "local" else address, workers=workers, gpus_per_worker=gpus)
