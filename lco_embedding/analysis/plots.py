"""The paper-style figures (matplotlib): anisotropy per layer, alignment per layer, the layer x layer heat-map.

Each function takes the tidy table of :func:`~lco_embedding.analysis.analyze_pairs` (several models overlay: one
line style per model) and returns a ``matplotlib.figure.Figure``; ``save_figure`` writes it as PNG. Uses the Agg
backend through ``matplotlib.figure.Figure`` directly, so nothing opens a window.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.core.require import require

__all__ = ["plot_alignment", "plot_anisotropy", "plot_layer_heatmap", "save_figure"]

_STYLES = ("-", "--", ":", "-.")
_LABELS = {
    "mutual_knn": "mutual k-NN",
    "cycle_knn": "cycle k-NN",
    "lcs_knn": "LCS k-NN",
    "edit_distance_knn": "edit-distance k-NN",
    "cka_linear": "CKA (linear)",
    "cka_rbf": "CKA (RBF)",
    "unbiased_cka_linear": "unbiased CKA (linear)",
    "unbiased_cka_rbf": "unbiased CKA (RBF)",
    "cknna": "CKNNA",
    "svcca": "SVCCA",
    "modality_gap": "modality gap (centroid distance)",
    "probe_accuracy": "linear-probe accuracy",
    "anisotropy": "anisotropy (mean cosine)",
}


def _figure(columns: int = 1, rows: int = 1, width: float = 6.4, height: float = 4.2) -> tuple[Any, Any]:
    require("matplotlib", "analysis")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _short(model: str) -> str:
    return Path(model).name or model


def _lines(ax: Any, table: Any, metric: str, series: list[str]) -> None:
    """One line per ``series`` key and model: colour by key, line style by model."""
    from matplotlib.ticker import MaxNLocator

    models = list(dict.fromkeys(table["model"]))
    subset = table[table["metric"] == metric]
    keys = list(dict.fromkeys(map(tuple, subset[series].itertuples(index=False, name=None))))
    colours = {key: f"C{i % 10}" for i, key in enumerate(keys)}
    for (model, *key), rows in subset.groupby(["model", *series], sort=False):
        rows = rows.sort_values("layer")
        label = _label(tuple(key), series) + (f" ({_short(model)})" if len(models) > 1 else "")
        style = _STYLES[models.index(model) % len(_STYLES)]
        ax.plot(rows["layer"], rows["value"], style, color=colours[tuple(key)], marker="o", markersize=3, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (0 = embedding output, last = final normed state)")
    ax.set_ylabel(_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _label(key: tuple, series: list[str]) -> str:
    if series == ["pair", "modality"]:  # anisotropy of one side of a modality pair
        pair, modality = key
        return modality if pair.split("-")[0] == modality else f"{modality} (of the {pair} pairs)"
    return str(key[0])


def plot_anisotropy(table: Any, *, title: str = "Anisotropy per layer") -> Any:
    """One line per modality (and model): the mean cosine similarity between members of each side, per layer."""
    figure, axes = _figure()
    ax = axes[0][0]
    _lines(ax, table, "anisotropy", ["pair", "modality"])
    ax.set_title(title)
    ax.set_ylim(min(0.0, float(table[table["metric"] == "anisotropy"]["value"].min()) - 0.05), 1.05)
    return figure


def plot_alignment(table: Any, metrics: Sequence[str] | None = None, *, title: str = "Alignment per layer") -> Any:
    """One panel per alignment metric, one line per modality pair (and model), per layer."""
    metrics = list(metrics or [m for m in dict.fromkeys(table["metric"]) if m != "anisotropy"])
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure, axes = _figure(columns, rows, width=5.2, height=3.8)
    for index, metric in enumerate(metrics):
        ax = axes[index // columns][index % columns]
        _lines(ax, table, metric, ["pair"])
        ax.set_title(_LABELS.get(metric, metric))
    for index in range(len(metrics), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.suptitle(title)
    return figure


def plot_layer_heatmap(matrix: np.ndarray, *, title: str, xlabel: str, ylabel: str, label: str = "mutual k-NN") -> Any:
    """A layer x layer alignment matrix (rows: layers of the first side, columns: of the second); undefined cells
    (NaN: the embedding layer, where every input has the same last token) are grey."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure(width=5.6, height=4.8)
    ax = axes[0][0]
    colours = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(matrix), origin="lower", cmap=colours, aspect="auto")
    figure.colorbar(image, ax=ax, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if np.isnan(matrix).any():
        ax.text(0.99, 0.01, "grey: undefined", transform=ax.transAxes, ha="right", va="bottom", fontsize="small")
    return figure


def save_figure(figure: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write a figure as PNG."""
    figure.savefig(path, dpi=dpi)
    return Path(path)
