"""``lco-embed demo``: the main job in one go on a small sample set — embed to disk, then search across modalities.

With the Hugging Face hub in reach it uses LCO-Embedding-Omni-3B; without it, a tiny random checkpoint from
:mod:`lco_embedding.testing`, behind a banner that says its rankings mean nothing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lco_embedding.cli.common import is_quiet, load_embedder
from lco_embedding.cli.samples import write_samples
from lco_embedding.cli.search import print_hits, query_prompt

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["demo"]


def workdir() -> Path:
    """Where the demo keeps its samples, checkpoint and embeddings: under the temporary folder of the moment (read
    when the demo runs, not when this module is imported)."""
    return Path(tempfile.gettempdir()) / "lco-embedding-demo"


BANNER = (
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    "!! {reason}\n"
    "!! Running on a TINY RANDOM checkpoint (lco_embedding.testing) instead: every step below is the real\n"
    "!! pipeline, but the weights are random, so the scores and rankings MEAN NOTHING.\n"
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
)


def _queries(media: Path) -> list[tuple[str, dict[str, Any], str]]:
    """(title, query item, modality searched) of the demo's cross-modal queries."""
    return [
        ('text -> image: "a red circle"', {"text": "a red circle"}, "image"),
        ('text -> audio: "a ticking clock"', {"text": "a ticking clock"}, "audio"),
        ('text -> video: "a ball rolling to the right"', {"text": "a ball rolling to the right"}, "video"),
        ("image -> text: blue_square.png", {"image": str(media / "blue_square.png")}, "text"),
    ]


@contextmanager
def _working_directory(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _absolute(name: str) -> str:
    """A model given as a path, made absolute (the demo changes folder); hub ids are kept as they are."""
    from lco_embedding.model.hub import looks_like_path

    expanded = os.path.expanduser(name)
    return os.path.abspath(expanded) if os.path.exists(expanded) or looks_like_path(name) else name


def _model(model: str | None, device: str | None) -> tuple[Any, str | None]:
    """The demo's model, and the banner's reason when it fell back to the tiny checkpoint.

    The banner is printed as soon as the fallback is decided, before the tiny checkpoint is built and loaded.
    """
    from lco_embedding.core.errors import CheckpointNotFoundError
    from lco_embedding.corpus.job_options import DEFAULT_MODEL
    from lco_embedding.model.hub import locate_checkpoint

    if model is not None:
        return load_embedder(model, device=device), None
    try:
        locate_checkpoint(DEFAULT_MODEL)
    except CheckpointNotFoundError as e:
        reason = f"Could not load {DEFAULT_MODEL}: {_first_clause(str(e))}."
    else:
        return load_embedder(DEFAULT_MODEL, device=device), None
    click.echo(BANNER.format(reason=reason))
    from lco_embedding.testing import build_tiny_checkpoint

    path = workdir() / "tiny-checkpoint"
    if not (path / "model.safetensors").is_file():
        build_tiny_checkpoint(path)
    return load_embedder(str(path), device=device), reason


def _first_clause(message: str) -> str:
    """The part of a loading error that says why: ``"cannot load 'x': the hub could not be reached (...), and
    ..."`` -> ``"the hub could not be reached (...)"``."""
    text = message.split(": ", 1)[-1] if message.startswith("cannot load") else message
    return text.split(", and ")[0].split(". ")[0].rstrip(".")[:160]


def _command_prefix() -> str:
    """How to run lco-embed as installed here: ``lco-embed`` when it is on PATH, else this environment's script,
    else ``python -m lco_embedding.cli``."""
    found = shutil.which("lco-embed")
    script = Path(sys.executable).with_name("lco-embed")
    if found and (not script.is_file() or Path(found).resolve() == script.resolve()):
        return "lco-embed"
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m lco_embedding.cli"


def _timed_hit(embedder: LCOEmbedder, medley: Path, prompt: str | None) -> None:
    """Step 3: where in a longer recording a text is heard (3-s segments, as ``encode --segment audio=3s``)."""
    import numpy as np

    from lco_embedding.corpus.search import Hit

    click.echo(f"\n3. Where in a recording: {medley.name} (beep, static, metronome, siren; 3 s each), in 3-s segments")
    segments = embedder.encode_segments(str(medley), window=3.0)
    query = "a ticking clock"
    scores = segments.embeddings @ embedder.encode(query, prompt=prompt, show_progress_bar=False)
    order = np.argsort(-scores, kind="stable")
    hits = [
        Hit(
            rank,
            float(scores[i]),
            int(i),
            medley.name,
            str(medley),
            "audio",
            {},
            int(i),
            segments.start[i],
            segments.end[i],
        )  # fmt: skip
        for rank, i in enumerate(order, 1)
    ]
    click.echo(f'\ntext -> audio segment: "{query}" (best: {hits[0].span})')
    print_hits(hits, source_width=0)


@click.command(short_help="Embed a sample set and search it across modalities (offline too).")
@click.option("--model", "-m", help="Checkpoint to use [default: LCO-Embedding-Omni-3B, or a tiny offline one].")
@click.option("--device", help="cuda, cpu, mps, ... [default: cuda if available, else mps, else cpu]")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Where to write the embeddings [default: lco-embedding-demo/embeddings in the temporary folder, replaced on "
    "every run].",
)
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=3, show_default=True, help="Hits per query.")
def demo(model: str | None, device: str | None, out: str | None, k: int) -> None:
    """Embed a small sample set (shapes, sounds, clips, captions) to disk and search it across modalities.

    The same steps as `lco-embed encode` and `lco-embed search`; the commands to repeat them are printed at the end.
    """
    from lco_embedding.corpus import OutputMismatchError, encode_corpus
    from lco_embedding.corpus.parquet_store import OutputFolder
    from lco_embedding.corpus.search import search_folder

    # Paths the caller gave are relative to the caller's folder: resolve them before anything changes folder.
    output = Path(os.path.abspath(os.path.expanduser(out))) if out else workdir() / "embeddings"
    model = _absolute(model) if model is not None else None
    samples = write_samples(workdir() / "samples")
    embedder, fallback = _model(model, device)
    click.echo(
        f"Model: {embedder.model_name_or_path} ({embedder.model_type}, {embedder.get_embedding_dimension()}-d, "
        f"{embedder.device}, {str(embedder.dtype).removeprefix('torch.')})"
    )
    click.echo(f"\n1. Embedding the sample set (files in media/ and the rows of captions.jsonl) into {output}")
    try:
        with _working_directory(samples.folder):
            summary = encode_corpus(
                ["media", "captions.jsonl"],
                output,
                model=embedder,
                show_progress_bar=not is_quiet(),
                overwrite=out is None,  # the default folder is the demo's own scratch space
            )
    except OutputMismatchError as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"   {summary.embedded} items embedded, {summary.failed} failed, in {summary.seconds:.1f} s; "
        f"{len(list(output.glob('part-*.parquet')))} shard(s), manifest.json and errors.jsonl written."
    )
    prompt = query_prompt(embedder, OutputFolder(output).manifest, None, None)
    click.echo("\n2. Cross-modal search (cosine, exact)")
    for title, item, modality in _queries(samples.media):
        vector = embedder.encode(item, prompt=prompt, show_progress_bar=False)
        hits = search_folder(output, vector, k, modalities={modality})[0]
        click.echo(f"\n{title}")
        print_hits(hits, source_width=0)
    _timed_hit(embedder, samples.medley, prompt)
    if fallback:
        click.echo("\n" + BANNER.format(reason=fallback))
    command, quote = _command_prefix(), shlex.quote
    click.echo(
        "\nRepeat it yourself:\n"
        f"  cd {quote(str(samples.folder))} && {command} encode media captions.jsonl --out {quote(str(output))} "
        f"--model {quote(embedder.model_name_or_path)}\n"
        f'  {command} search {quote(str(output))} "a red circle" --only image\n'
        f"  {command} search {quote(str(output))} --image {quote(str(samples.media / 'blue_square.png'))} --only text"
    )
