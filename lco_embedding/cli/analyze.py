"""``lco-embed analyze``: the paper's layer-wise analysis of paired items, as a table and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lco_embedding.cli.common import load_embedder

__all__ = ["analyze"]


@click.command(short_help="Layer-wise anisotropy and cross-modal alignment of paired items, with figures.")
@click.argument("pairs_file", metavar="PAIRS.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "-m", required=True, help="Checkpoint to analyse (hub id or folder).")
@click.option("--compare", "others", multiple=True, help="Another checkpoint on the same figures (repeatable).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--metrics", default=None, help="Comma-separated alignment metrics [default: the main five].")
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="Neighbours for the k-NN metrics.")
@click.option("--device", help="cuda, cpu, mps, ... [default: cuda if available, else mps, else cpu]")
@click.option(
    "--conventions",
    type=click.Choice(["paper", "authors"]),
    default="paper",
    show_default=True,
    help="'authors' reproduces the LCO-Embedding authors' Analysis/ scripts: their prompts and metric conventions "
    "(docs/analysis.md lists the differences).",
)
def analyze(
    pairs_file: str,
    model: str,
    others: tuple[str, ...],
    out: str,
    metrics: str | None,
    k: int,
    device: str | None,
    conventions: str,
) -> None:
    """Embed the pairs of PAIRS.jsonl at every layer with --model (and each --compare checkpoint) and write to --out:
    metrics.csv and metrics.json (one row per model x modality pair x layer x metric), anisotropy.png,
    alignment.png and a layer x layer mutual k-NN heat-map per model and modality pair.

    Each line of PAIRS.jsonl is one media file and its text: {"image": "img/001.jpg", "text": "a cat on a mat"}
    (or "audio" / "video"; paths relative to the file). Pairs of several modalities are analysed per modality.
    Compare a base model with its LCO-Embedding refinement with --compare.
    """
    from lco_embedding.core.require import require

    require("matplotlib", "analysis")
    require("pandas", "analysis")
    import pandas as pd

    from lco_embedding.analysis import (
        ALIGNMENT_METRICS,
        DEFAULT_METRICS,
        analyze_pairs,
        embed_pairs,
        plot_alignment,
        plot_anisotropy,
        read_pairs,
        save_figure,
    )

    chosen = [m.strip() for m in metrics.split(",")] if metrics else list(DEFAULT_METRICS)
    unknown = sorted(set(chosen) - set(ALIGNMENT_METRICS))
    if unknown:
        raise click.UsageError(f"unknown metrics {unknown}; choose from {', '.join(sorted(ALIGNMENT_METRICS))}.")
    try:
        pairs = read_pairs(pairs_file)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tables, figures = [], []
    for number, name in enumerate([model, *others]):
        embedder = load_embedder(name, device=device)
        click.echo(f"Analysing {len(pairs)} pairs with {name} ({embedder.num_layers + 1} hidden states)...", err=True)
        first, second = embed_pairs(embedder, pairs, conventions=conventions)
        try:
            tables.append(
                analyze_pairs(
                    embedder,
                    pairs,
                    metrics=chosen,
                    k=k,
                    model_name=name,
                    embeddings=(first, second),
                    conventions=conventions,
                )
            )
        except ValueError as e:
            raise click.ClickException(str(e)) from e
        figures.append(_heatmap(pairs, first, second, k, conventions, name, folder / f"heatmap-{number}.png"))
        del embedder
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(folder / "metrics.csv", index=False)
    document = {
        "models": [model, *others],
        "pairs_file": str(Path(pairs_file).resolve()),
        "k": k,
        "metrics": chosen,
        "conventions": conventions,
        "rows": table.to_dict(orient="records"),
    }
    (folder / "metrics.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    figures.append(save_figure(plot_anisotropy(table), folder / "anisotropy.png"))
    figures.append(save_figure(plot_alignment(table, chosen), folder / "alignment.png"))
    summary = table[table["metric"].isin(["mutual_knn", *chosen[:1]])].groupby(["model", "pair", "metric"])["value"]
    click.echo(summary.agg(["min", "max", "last"]).round(4).to_string())
    click.echo(f"Wrote {folder / 'metrics.csv'}, metrics.json and {', '.join(p.name for p in figures)} in {folder}.")


def _heatmap(pairs: list, first: Any, second: Any, k: int, conventions: str, name: str, path: Path) -> Path:
    """The layer x layer mutual k-NN heat-map of the first pair's modality, written to ``path``."""
    from lco_embedding.analysis import layer_alignment_matrix, plot_layer_heatmap, save_figure

    modality = next(iter(pairs[0][0]))
    group = [i for i, (media, _) in enumerate(pairs) if modality in media]
    matrix = layer_alignment_matrix(first[group], second[group], k=min(k, len(group) - 1), conventions=conventions)
    title = f"{modality}-text mutual k-NN, layer x layer\n{Path(name).name or name}"
    figure = plot_layer_heatmap(matrix, title=title, xlabel="text layer", ylabel=f"{modality} layer")
    return save_figure(figure, path)
