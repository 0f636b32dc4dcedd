"""``lco-embed eval``: retrieval metrics on your own dataset, per query -> corpus modality, or installed mteb tasks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lco_embedding.cli.common import (
    StoreTarget,
    is_quiet,
    load_embedder,
    load_reranker,
    model_options,
    preset_kwargs,
    rerank_options,
    segment_spec,
)

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["evaluate"]


@click.command("eval", short_help="Evaluate retrieval on a BEIR-layout dataset of any modality, or mteb tasks.")
@click.argument("data", required=False, type=click.Path(exists=True, file_okay=False))
@model_options
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [default: DATA/eval].")
@click.option("--corpus-from", type=StoreTarget(), help="Reuse the corpus embeddings of this folder or store.")
@click.option("--split", default="test", show_default=True, help="The qrels file: qrels/SPLIT.tsv.")
@click.option(
    "-k", "--top-k", "k", type=click.IntRange(min=1), default=100, show_default=True, help="Documents ranked."
)
@click.option("--calibrate", is_flag=True, help="Rank the all -> all pair by per-modality standardised scores.")
@click.option("--segment", "segment_text", metavar="SPEC", help="Cut the corpus into segments (audio=30s,...).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Items per pass.")
@rerank_options(
    "Also measure every pair reranked, side by side with the first stage,", "the documents per query it reranks"
)
@click.option("--mteb", "mteb_tasks", metavar="TASK[,TASK...]", help="Run these installed mteb tasks instead.")
@click.option(
    "--allow-other-model",
    is_flag=True,
    help="With --corpus-from: embed the queries with --model although the store was made by another (a copy of its "
    "model elsewhere).",
)
@click.pass_context
def evaluate(
    ctx: click.Context,
    data: str | None,
    model: str,
    revision: str | None,
    device: str | None,
    dtype: str,
    out: str | None,
    corpus_from: str | None,
    split: str,
    k: int,
    calibrate: bool,
    segment_text: str | None,
    batch_size: int,
    rerank_model: str | None,
    rerank_k: int,
    mteb_tasks: str | None,
    allow_other_model: bool,
) -> None:
    """Evaluate retrieval on DATA, a folder in the BEIR layout whose rows may be of any modality:

    \b
    DATA/corpus.jsonl    {"_id": "d1", "text": "..."}, {"_id": "d2", "image": "img/cat.jpg"}, audio, video, mixed
    DATA/queries.jsonl   {"_id": "q1", "text": "..."} or media, as the corpus
    DATA/qrels/test.tsv  query-id <tab> corpus-id <tab> score

    The corpus is embedded into OUT/corpus (resumable, as lco-embed encode; or --corpus-from an existing one),
    the queries with the model's query prompt, and every query ranked against the corpus. nDCG@10, recall@1/10/100,
    MRR@10 and MAP@100 (by pytrec_eval) are reported for all queries, and per query-modality -> corpus-modality
    pair, in OUT/results.json, OUT/results.md and a bar chart OUT/results.png.

    \b
    lco-embed eval my-data --model LCO-Embedding/LCO-Embedding-Omni-3B --out my-eval
    lco-embed eval my-data --corpus-from lancedb://db/corpus --calibrate
    lco-embed eval my-data --corpus-from emb --rerank Qwen/Qwen2.5-Omni-3B --rerank-k 50
    lco-embed eval --mteb STS12,NFCorpus --model LCO-Embedding/LCO-Embedding-Omni-3B --preset mteb --out mteb-results
    """
    if mteb_tasks is not None:
        if data is not None:
            raise click.UsageError("give DATA or --mteb TASKS, not both.")
        target = Path(out or "mteb-results")
        _run_mteb(mteb_tasks, target, load_embedder(model, revision=revision, device=device, dtype=dtype), batch_size)
        return
    if data is None:
        raise click.UsageError("give DATA (a BEIR-layout folder) or --mteb TASKS.")
    from lco_embedding.evaluation import evaluate_retrieval

    folder = Path(out) if out else Path(data) / "eval"
    if corpus_from is None:
        embedder = load_embedder(model, revision=revision, device=device, dtype=dtype)
    else:  # the store's own model embeds the queries, unless --model names another (refused without the flag)
        given = ctx.get_parameter_source("model") is not click.core.ParameterSource.DEFAULT
        embedder = model if given else None
    reranker = None if rerank_model is None else load_reranker(rerank_model, device=device)
    try:
        result = evaluate_retrieval(
            data, folder, model=embedder, corpus_from=corpus_from, split=split, k=k, calibrate=calibrate,
            segment=segment_spec(segment_text), batch_size=batch_size, show_progress_bar=not is_quiet(),
            embedder_kwargs={**preset_kwargs(), **({"device": device} if device else {})} or None,
            allow_other_model=allow_other_model, rerank=reranker, rerank_k=rerank_k,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, ImportError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(result.table())
    click.echo(f"\nResults: {folder / 'results.json'} (per query: per_query), {folder / 'results.png'}")


def _run_mteb(names: str, out: Path, embedder: LCOEmbedder, batch_size: int) -> None:
    """Run installed mteb tasks through the mteb wrapper, with their data from the local cache."""
    from lco_embedding.evaluation.mteb_tasks import run_mteb_tasks

    try:
        scores = run_mteb_tasks([n.strip() for n in names.split(",") if n.strip()], embedder, out, batch_size)
    except (ValueError, ImportError, RuntimeError, OSError) as e:
        raise click.ClickException(str(e)) from e
    for task, score in scores.items():
        click.echo(f"{task}\t{score:.4f}")
    click.echo(f"Results: {out}", err=True)
    sys.stdout.flush()
