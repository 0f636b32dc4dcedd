"""``lco-embed search``, ``index`` and ``export``: query a folder or store with text or media, build its index, copy a
folder into LanceDB or Milvus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lco_embedding.cli.common import (
    StoreTarget,
    format_table,
    is_quiet,
    load_reranker,
    loading_errors,
    rerank_options,
    shorten,
)
from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import ROW_MODALITIES, item_modality, spec_of

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["export", "index", "load_folder_model", "print_hits", "query_item", "query_prompt", "search"]


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


def query_prompt(
    embedder: LCOEmbedder, manifest: dict[str, Any], prompt: str | None, prompt_name: str | None
) -> str | None:
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
    """The model that made an output folder or store, with its settings, to embed queries exactly like the items
    (:func:`lco_embedding.corpus.description.load_store_model`); ``model``: a copy of it elsewhere."""
    from lco_embedding.corpus.description import load_store_model

    with loading_errors(model or manifest["model"]["name"]):
        return load_store_model(manifest, model=model, device=device)


def print_hits(hits: list[Any], *, source_width: int = 60) -> None:
    """Print hits as a table: rank, score, id, modality, where in the source (segmented folders) and (unless
    ``source_width`` is 0) source."""
    timed = any(h.segment is not None for h in hits)
    reranked = any(h.rerank_score is not None for h in hits)
    headers = ("rank", *(("rerank",) if reranked else ()), "score", "id", "modality", *(("where",) if timed else ()),
               "source")  # fmt: skip
    rows = [
        (
            h.rank,
            *((_rerank_cell(h.rerank_score),) if reranked else ()),
            f"{h.score:.4f}",
            h.id,
            h.modality,
            *((h.span,) if timed else ()),
            shorten(h.source, source_width),
        )  # fmt: skip
        for h in hits
    ]
    if not source_width:
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    click.echo(format_table(headers, rows, right=("rank", "rerank", "score")))


def _rerank_cell(score: float | None) -> str:
    return "-" if score is None else f"{score:.4f}"


@click.command(short_help="Find the rows most similar to a text, image, sound or video.")
@click.argument("store", type=StoreTarget())
@click.argument("query", nargs=-1)
@click.option("--image", type=click.Path(exists=True, dir_okay=False), help="Query with this image.")
@click.option("--audio", type=click.Path(exists=True, dir_okay=False), help="Query with this sound.")
@click.option("--video", type=click.Path(exists=True, dir_okay=False), help="Query with this video.")
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Hits to show.")
@click.option(
    "--only", type=click.Choice(ROW_MODALITIES), multiple=True, help="Only rows of this modality (repeat for several)."
)
@click.option(
    "--where",
    help="Only rows matching this filter, in the store's language: LanceDB's SQL (\"year >= 2020 AND lang = 'en'\"), "
    "Milvus's expressions (\"year >= 2020 and lang == 'en'\"); not for Parquet folders.",
)
@click.option(
    "--group-by",
    type=click.Choice(["source"]),
    help="One hit per source file: its best row (in a segmented corpus, its best segment).",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Rank by scores standardised per modality, so that the modality gap does not put every row of the "
    "query's modality first (docs/stores.md#modality-aware-ranking).",
)
@click.option(
    "--per-modality",
    type=click.IntRange(min=1),
    metavar="K",
    help="Print the top K of each modality side by side instead of one ranking.",
)
@click.option("--exact", "mode", flag_value="exact", help="Exact search even when an index exists.")
@click.option("--index", "mode", flag_value="index", help="Use the approximate index (fails without a current one).")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.option("--prompt", help="Instruction for the query [default: the model's query prompt, else the documents'].")
@click.option("--prompt-name", help="Name of a prompt saved with the model.")
@click.option("--model", "-m", help="Embed the query with this copy of the store's model (e.g. a moved folder).")
@click.option("--device", help="cuda, cpu, mps, ... [default: cuda if available, else mps, else cpu]")
@rerank_options(
    "Rerank the first hits (both scores are shown)",
    "how many first-stage hits the reranker reads (the best -k of them are shown)",
)
def search(
    store: str,
    query: tuple[str, ...],
    image: str | None,
    audio: str | None,
    video: str | None,
    k: int,
    only: tuple[str, ...],
    where: str | None,
    group_by: str | None,
    calibrate: bool,
    per_modality: int | None,
    mode: str | None,
    as_json: bool,
    prompt: str | None,
    prompt_name: str | None,
    model: str | None,
    device: str | None,
    rerank_model: str | None,
    rerank_k: int,
) -> None:
    """Find the rows of STORE most similar to QUERY (words are joined into one text) or to a media file.

    STORE is an output folder of lco-embed encode, a LanceDB table (lancedb://PATH/TABLE) or a Milvus collection
    (milvus://FILE.db/COLLECTION, milvus://HOST:PORT/COLLECTION). The query is embedded with the store's model,
    settings and prompts (its manifest), and compared by cosine with every row: exactly, or through the store's
    approximate index when `lco-embed index` has built one.

    \b
    lco-embed search emb "a cat on a mat"
    lco-embed search emb --image cat.jpg --only text -k 3
    lco-embed search emb "a cat on a mat" --calibrate          images and sounds ranked fairly against texts
    lco-embed search emb "a cat on a mat" --per-modality 3     the top 3 of each modality side by side
    lco-embed search lancedb://db/corpus "rain" --where "year >= 2020"
    lco-embed search talks "the part about interest rates" --group-by source
    lco-embed search emb "a cat on a mat" --rerank Qwen/Qwen2.5-Omni-3B --rerank-k 50

    In a corpus encoded with --segment each hit says where it lies in its source (1:30-2:00, or chars 120-480).
    """
    from lco_embedding.corpus.search import search_folder, search_per_modality
    from lco_embedding.corpus.stores import open_store

    item = query_item(query, image, audio, video)
    opened = None
    try:
        opened = open_store(store)
        manifest = opened.manifest
    except (FileNotFoundError, ValueError, ImportError, ConnectionError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    finally:
        if opened is not None:
            opened.close()
    if manifest["status"] != "complete":
        counts = manifest["counts"]
        total = f"{counts['total']:,}" if counts["total"] is not None else "?"
        click.echo(f"Note: {store} is not complete ({counts['done']:,} of {total} items committed).", err=True)
    embedder = load_folder_model(manifest, model, device)
    try:
        vector = embedder.encode(item, prompt=query_prompt(embedder, manifest, prompt, prompt_name))
    except LCOInputError as e:
        raise click.ClickException(f"cannot embed the query: {e.reason}") from e
    options: dict[str, Any] = {
        "exact": {"exact": True, "index": False}.get(mode or ""),
        "modalities": set(only) or None,
        "group_by": group_by,
        "where": where,
    }
    if rerank_model is not None:
        if per_modality is not None:
            raise click.UsageError("--rerank ranks one list: leave out --per-modality.")
        options.update(rerank=load_reranker(rerank_model, device=device), query_items=item, rerank_k=rerank_k)
    try:
        if per_modality is not None:
            columns = search_per_modality(store, vector, per_modality, **options)[0]
        else:
            found = search_folder(store, vector, k, calibrate=calibrate, query_modality=item_modality(item), **options)
            hits = found[0]
    except (ValueError, ImportError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    if per_modality is not None:
        _print_columns(columns, as_json)
    elif as_json:
        click.echo(json.dumps([hit.to_json() for hit in hits], ensure_ascii=False, indent=1))
    elif hits:
        print_hits(hits)
    else:
        click.echo("No rows to search." if not (only or where) else "No rows match the filter.")


def _print_columns(columns: dict[str, list[Any]], as_json: bool) -> None:
    """Each modality's hits side by side: a column per modality, ``score id`` in each cell."""
    if as_json:
        click.echo(json.dumps({m: [h.to_json() for h in hits] for m, hits in columns.items()}, ensure_ascii=False))
        return
    if not columns:
        click.echo("No rows to search.")
        return
    depth = max(len(hits) for hits in columns.values())
    rows = [
        (rank + 1, *(_cell(hits[rank]) if rank < len(hits) else "" for hits in columns.values()))
        for rank in range(depth)
    ]
    click.echo(format_table(("rank", *columns), rows, right=("rank",)))


def _cell(hit: Any) -> str:
    where = f" [{hit.span}]" if hit.span else ""
    return f"{hit.score:.4f} {shorten(hit.id, 40)}{where}"


@click.command(short_help="Build the approximate index of a folder or store, and its per-modality calibration.")
@click.argument("store", type=StoreTarget())
@click.option(
    "--dtype",
    type=click.Choice(["f16", "f32", "i8"]),
    default="f16",
    show_default=True,
    help="How a folder's usearch index stores vectors (f16: half the memory, same ranking to ~1e-3).",
)
@click.option("--connectivity", type=click.IntRange(min=2), help="HNSW graph degree [default: the store's].")
def index(store: str, dtype: str, connectivity: int | None) -> None:
    """Build an approximate index over STORE's rows, for search over millions of vectors, and record the
    statistics that --calibrate ranks by.

    A folder gets a usearch HNSW index (`pip install 'lco-embedding[index]'`), a LanceDB table an IVF-HNSW index, a
    Milvus collection an HNSW index in place of its exact FLAT one. Search uses a folder's index while it covers
    every row; after more rows are added, run this again.
    """
    from lco_embedding.corpus.search import build_index

    try:
        entry = build_index(store, dtype=dtype, connectivity=connectivity, show_progress_bar=not is_quiet())
    except (FileNotFoundError, ValueError, ImportError, RuntimeError, ConnectionError) as e:
        raise click.ClickException(str(e)) from e
    if entry.get("file"):
        path = Path(store) / entry["file"]
        click.echo(f"Indexed {entry['size']:,} rows: {path} ({path.stat().st_size / 1e6:.1f} MB).")
    elif entry.get("type"):
        click.echo(f"Indexed {entry['rows']:,} rows of {store}: {entry['type']}.")
    else:
        click.echo(f"{store} has {entry['rows']:,} rows: searched exactly, no index needed.")
    click.echo("Recorded the per-modality calibration (search --calibrate).")


@click.command(short_help="Copy an output folder into a LanceDB table or a Milvus collection.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("store")
@click.option("--overwrite", is_flag=True, help="Replace what the table or collection holds.")
def export(folder: str, store: str, overwrite: bool) -> None:
    """Copy the rows, manifest and failures of the Parquet output FOLDER into STORE (lancedb://PATH/TABLE,
    milvus://FILE.db/COLLECTION or milvus://HOST:PORT/COLLECTION). An interrupted export resumes where it stopped.

    \b
    lco-embed export emb lancedb://db/corpus
    lco-embed export emb milvus://corpus.db/corpus
    """
    from lco_embedding.corpus.export import export_folder

    try:
        written = export_folder(folder, store, overwrite=overwrite, show_progress_bar=not is_quiet())
    except (FileNotFoundError, ValueError, ImportError, RuntimeError, ConnectionError) as e:
        raise click.ClickException(str(e)) from e
    counts = written["counts"]
    click.echo(f"Exported {counts['embedded']:,} rows and {counts['failed']:,} failures of {folder} to {store}.")
