"""The LCO-Embedding paper's representation analysis on your checkpoints and data (``pip install
'lco-embedding[analysis]'`` for the tables and plots).

* :mod:`.metrics` — anisotropy; alignment of paired sets (mutual / cycle / LCS / edit-distance k-NN, CKA linear and
  RBF with biased or unbiased HSIC, CKNNA, SVCCA); the modality gap and linear-probe separability. Torch, float64,
  CPU or GPU; the paper's conventions or, with ``conventions="authors"``, those of the authors' code.
* :mod:`.pairs` — :func:`analyze_pairs`: every layer's embeddings of paired items, then the metrics per layer, as a
  tidy table.
* :mod:`.plots` — the paper-style figures.

Example:
    >>> from lco_embedding.analysis import analyze_pairs, plot_anisotropy, read_pairs
    >>> table = analyze_pairs(model, read_pairs("pairs.jsonl"), k=3)
    >>> sorted(set(table["pair"]))
    ['image-text']
    >>> plot_anisotropy(table).savefig("anisotropy.png")
"""

from lco_embedding.analysis.metrics import (
    ALIGNMENT_METRICS,
    CONVENTIONS,
    PairedSets,
    alignment_scores,
    anisotropy,
    cka,
    cknna,
    cycle_knn,
    edit_distance_knn,
    lcs_knn,
    modality_gap,
    mutual_knn,
    probe_accuracy,
    svcca,
)
from lco_embedding.analysis.pairs import (
    DEFAULT_METRICS,
    analyze_pairs,
    authors_item,
    embed_pairs,
    layer_alignment_matrix,
    layer_embeddings,
    read_pairs,
)
from lco_embedding.analysis.plots import plot_alignment, plot_anisotropy, plot_layer_heatmap, save_figure

__all__ = [
    "ALIGNMENT_METRICS",
    "CONVENTIONS",
    "DEFAULT_METRICS",
    "PairedSets",
    "alignment_scores",
    "analyze_pairs",
    "anisotropy",
    "authors_item",
    "cka",
    "cknna",
    "cycle_knn",
    "edit_distance_knn",
    "embed_pairs",
    "layer_alignment_matrix",
    "layer_embeddings",
    "lcs_knn",
    "modality_gap",
    "mutual_knn",
    "plot_alignment",
    "plot_anisotropy",
    "plot_layer_heatmap",
    "probe_accuracy",
    "read_pairs",
    "save_figure",
    "svcca",
]
