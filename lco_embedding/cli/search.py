"""``lco-embed search`` and ``lco-embed index``: query an output folder with text or media, build its index."""

from __future__ import annotations

import json
from typing import Any

import click

from lco_embedding.cli.common import format_table, is_quiet, load_embedder, shorten
from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import spec_of

__all__ = ["index", "load_folder_model", "print_hits", "query_item", "query_prompt", "search"]

MODALITIES = ("text", "image", "audio", "video", "mixed")


def query_item(words: tuple[str, ...] | list[str], image: str | None, audio: str | None, video: str | None) -> dict:
    """The query as an ``encode`` item: the words joined into one text, with the media file if one is given."""
    item: dict[str, Any] = {}
    text = " ".join(words).strip()
    if text:
        item["text"] = text
    elif words and not (image or audio or video):
        raise click.UsageError("the query is empty: give a text with at least one non-blank character (or --image, "
                               "--audio or --video).")  # fmt: skip
    for modality, path in (("image", image), ("audio", audio), ("video", video)):
        if path:
            item[modality] = path
    if not item:
        raise click.UsageError("give a QUERY text, or --image, --audio or --video (or a text and one of them).")
    if sum(1 for key in item if spec_of(key).is_media) > 1:
        raise click.UsageError("give only one of --image, --audio and --video.")
    return item


def query_prompt(embedder: Any, manifest: dict[str, Any], prompt: str | None, prompt_name: str | None) -> str | None:
    """The instruction for queries: the one asked for, else the model's "query" prompt, else the documents'."""
    if prompt is not None:
        return prompt
    if prompt_name is not None:
        if prompt_name not in embedder.prompts:
            raise click.UsageError(f"the model has no prompt {prompt_name!r} (it has {sorted(embedder.prompts)}).")
        return embedder.prompts[prompt_name]
    if "query" in embedder.prompts:
        return embedder.prompts["query"]
    return manifest["prompts"]["instruction"]


def load_folder_model(manifest: dict[str, Any], model: str | None, device: str | None) -> Any:
    """The model that made an output folder, with its settings, to embed queries exactly like the items."""
    spec = manifest["model"]
    embedder = load_embedder(
        model or spec["name"],
        revision=None if model else spec.get("revision"),
        device=device,
        dtype=spec["dtype"],
        quantization=spec.get("quantization"),  # queries embedded like the rows
        **manifest["settings"],
    )
    if embedder.embedder_settings.saved() != manifest["settings"]:
        raise click.ClickException(
            f"the model's preprocessing settings {embedder.embedder_settings.saved()} differ from the folder's "
            f"{manifest['settings']}: the query would not be embedded like the rows."
        )
    if embedder.get_embedding_dimension() != manifest["dimension"]:
        raise click.ClickException(
            f"{embedder.model_name_or_path!r} makes {embedder.get_embedding_dimension()}-dimensional embeddings; the "
            f"folder holds {manifest['dimension']}-dimensional ones from {spec['name']!r}."
        )
    return embedder


def print_hits(hits: list[Any], *, source_width: int = 60) -> None:
    """Print hits as a table: rank, score, id, modality, where in the source (segmented folders) and (unless
    ``source_width`` is 0) source."""
    timed = any(h.segment is not None for h in hits)
    headers = ("rank", "score", "id", "modality", *(("where",) if timed else ()), "source")
    rows = [
        (h.rank, f"{h.score:.4f}", h.id, h.modality, *((h.span,) if timed else ()), shorten(h.source, source_width))
        for h in hits
    ]
    if not source_width:
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    click.echo(format_table(headers, rows, right=("rank", "score")))


@click.command(short_help="Find the rows most similar to a text, image, sound or video.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("query", nargs=-1)
@click.option("--image", type=click.Path(exists=True, dir_okay=False), help="Query with this image.")
@click.option("--audio", type=click.Path(exists=True, dir_okay=False), help="Query with this sound.")
@click.option("--video", type=click.Path(exists=True, dir_okay=False), help="Query with this video.")
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Hits to show.")
@click.option(
    "--only",
    type=click.Choice(MODALITIES),
    multiple=True,
    help="Only rows of this modality (repeat for several); searches exactly.",
)
@click.option(
    "--group-by",
    type=click.Choice(["source"]),
    help="One hit per source file: its best row (in a segmented folder, its best segment); searches exactly.",
)
@click.option("--exact", "mode", flag_value="exact", help="Exact search even when an index exists.")
@click.option("--index", "mode", flag_value="index", help="Use the approximate index (fails without a current one).")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.option("--prompt", help="Instruction for the query [default: the model's query prompt, else the documents'].")
@click.option("--prompt-name", help="Name of a prompt saved with the model.")
@click.option("--model", "-m", help="Embed the query with this copy of the folder's model (e.g. a moved folder).")
@click.option("--device", help="cuda, cpu, mps, ... [default: cuda if available, else mps, else cpu]")
def search(
    folder: str,
    query: tuple[str, ...],
    image: str | None,
    audio: str | None,
    video: str | None,
    k: int,
    only: tuple[str, ...],
    group_by: str | None,
    mode: str | None,
    as_json: bool,
    prompt: str | None,
    prompt_name: str | None,
    model: str | None,
    device: str | None,
) -> None:
    """Find the rows of FOLDER most similar to QUERY (words are joined into one text) or to a media file.

    The query is embedded with the folder's model, settings and prompts (see its manifest.json), and compared by
    cosine with every row (exact search in chunks over the memory-mapped shards), or through the approximate index
    when `lco-embed index` has built one that covers every row.

    \b
    lco-embed search emb "a cat on a mat"
    lco-embed search emb --image cat.jpg --only text -k 3
    lco-embed search emb "the same scene at night" --image day.jpg --json
    lco-embed search talks "the part about interest rates" --group-by source

    In a folder encoded with --segment each hit says where it lies in its source (1:30-2:00, or chars 120-480).
    """
    from lco_embedding.corpus.search import search_folder
    from lco_embedding.corpus.store import OutputFolder

    item = query_item(query, image, audio, video)
    try:
        manifest = OutputFolder(folder).manifest
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if manifest["status"] != "complete":
        counts = manifest["counts"]
        total = f"{counts['total']:,}" if counts["total"] is not None else "?"
        click.echo(f"Note: {folder} is not complete ({counts['done']:,} of {total} items committed).", err=True)
    embedder = load_folder_model(manifest, model, device)
    try:
        vector = embedder.encode(item, prompt=query_prompt(embedder, manifest, prompt, prompt_name))
    except LCOInputError as e:
        raise click.ClickException(f"cannot embed the query: {e.reason}") from e
    exact = {"exact": True, "index": False}.get(mode or "")
    try:
        hits = search_folder(folder, vector, k, exact=exact, modalities=set(only) or None, group_by=group_by)[0]
    except (ValueError, ImportError) as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps([hit.to_json() for hit in hits], ensure_ascii=False, indent=1))
    elif hits:
        print_hits(hits)
    else:
        click.echo("No rows to search." if not only else f"No rows of modality {', '.join(only)}.")


@click.command(short_help="Build an approximate index (usearch) for millions of rows.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--dtype",
    type=click.Choice(["f16", "f32", "i8"]),
    default="f16",
    show_default=True,
    help="How the index stores vectors (f16: half the memory, same ranking to ~1e-3).",
)
@click.option("--connectivity", type=click.IntRange(min=2), help="HNSW graph degree [default: usearch's].")
def index(folder: str, dtype: str, connectivity: int | None) -> None:
    """Build an approximate (HNSW, usearch) index over FOLDER's rows, for search over millions of vectors.

    Needs `pip install 'lco-embedding[index]'`. Search uses it while it covers every row; after more rows are
    added, run this again.
    """
    from lco_embedding.corpus.search import build_index

    try:
        path = build_index(folder, dtype=dtype, connectivity=connectivity, show_progress_bar=not is_quiet())
    except (FileNotFoundError, ValueError, ImportError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    from lco_embedding.corpus.store import OutputFolder

    rows = OutputFolder(folder).manifest["index"]["rows"]
    click.echo(f"Indexed {rows:,} rows: {path} ({path.stat().st_size / 1e6:.1f} MB).")
