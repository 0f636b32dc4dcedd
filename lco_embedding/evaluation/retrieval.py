"""Evaluate retrieval on your own data, across modalities: the corpus embedded into a store (resumably, by the corpus
job), the queries with the query prompt, every query ranked against the corpus, and the metrics per (query modality
-> corpus modality) pair, computed by ``pytrec_eval``.

For a pair ``q -> c`` the queries of modality ``q`` are ranked against the corpus rows of modality ``c`` only, and
judged against their relevant documents of modality ``c`` (queries with none are left out of that pair); the pair
``all -> all`` ranks every query against the whole corpus. With segments (``segment=``) a document's score is its
best segment's. ``calibrate`` ranks the ``all`` pairs by the per-modality standardised scores of
:mod:`lco_embedding.corpus.calibration`.

With a reranker (``rerank=``), every pair is also measured reranked: each query's first ``rerank_k`` documents of
that pair are scored by the reranker with the query (their rows of the dataset, read as items) and put first in the
reranker's order, the rest following in their first-stage order. Both are reported side by side (``pairs`` and
``reranked``), so the gain — or the loss — shows on your own data; a pair is scored once for all pairs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lco_embedding.core.errors import LCOInputError
from lco_embedding.evaluation.beir import Dataset, load_dataset, row_item, row_modality
from lco_embedding.evaluation.metrics import METRICS, score_run

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.rerank import LCOReranker

__all__ = ["ALL", "EvalResult", "evaluate_retrieval"]

logger = logging.getLogger(__name__)

ALL = "all"
RERANKED = "reranked"
RESULTS_FILE = "results.json"
CORPUS_INPUT = "corpus-input.jsonl"
CORPUS_FOLDER = "corpus"


@dataclass
class EvalResult:
    """What :func:`evaluate_retrieval` measured.

    Attributes:
        pairs: ``"q -> c"`` -> {"queries": judged queries, metric: mean} (``all -> all`` first).
        per_query: ``"q -> c"`` -> query id -> its metrics.
        corpus: Where the corpus embeddings are (a folder or store).
        out: The output folder (``results.json``, ``results.md``, ``results.png``).
    """

    pairs: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]] = field(repr=False)
    corpus: str = ""
    out: Path | None = None
    reranked: dict[str, dict[str, float]] | None = None
    """With a reranker: ``"q -> c"`` -> its metrics reranked (the same queries)."""
    per_query_reranked: dict[str, dict[str, dict[str, float]]] | None = field(default=None, repr=False)

    def table(self) -> str:
        """The pairs as a markdown table (with a reranker, each pair's reranked row under it)."""
        header = "| pair | queries | " + " | ".join(METRICS) + " |"
        lines = [header, "|" + "---|" * (len(METRICS) + 2)]
        for pair, values in self.rows():
            cells = " | ".join(f"{values[m]:.4f}" for m in METRICS)
            lines.append(f"| {pair} | {int(values['queries'])} | {cells} |")
        return "\n".join(lines)

    def rows(self) -> list[tuple[str, dict[str, float]]]:
        """``(name, metrics)`` of each pair, and with a reranker its reranked row (``"q -> c, reranked"``) after it."""
        found = []
        for pair, values in self.pairs.items():
            found.append((pair, values))
            if self.reranked is not None and pair in self.reranked:
                found.append((f"{pair}, {RERANKED}", self.reranked[pair]))
        return found


def _pair(query: str, corpus: str) -> str:
    return f"{query} -> {corpus}"


def evaluate_retrieval(
    data: str | os.PathLike[str] | Dataset,
    out: str | os.PathLike[str],
    *,
    model: LCOEmbedder | str | None = None,
    corpus_from: str | None = None,
    split: str = "test",
    k: int = 100,
    calibrate: bool = False,
    segment: Any = None,
    batch_size: int = 32,
    show_progress_bar: bool = False,
    embedder_kwargs: dict[str, Any] | None = None,
    allow_other_model: bool = False,
    rerank: LCOReranker | None = None,
    rerank_k: int = 50,
) -> EvalResult:
    """Evaluate ``model`` on the BEIR-layout dataset ``data`` (see the module) and write the results to ``out``.

    Args:
        data: The dataset folder (:mod:`.beir`), or a loaded :class:`~.beir.Dataset`.
        out: Output folder: the corpus embeddings (``out/corpus``, resumable), ``results.json``, ``results.md`` and
            ``results.png`` (with matplotlib).
        model: An ``LCOEmbedder`` or a model name (default: the one that made ``corpus_from``).
        corpus_from: Reuse the corpus embeddings of this folder or store (``lco-embed encode`` of the same corpus
            rows, ids equal to the corpus's ``_id``) instead of embedding the corpus.
        split: The qrels file (``qrels/{split}.tsv``).
        k: Documents retrieved per query (recall@100 needs 100).
        calibrate: Rank the ``all -> all`` pair by per-modality standardised scores.
        segment: A :class:`~lco_embedding.segments.SegmentSpec`: the corpus cut into segments, a document scored by
            its best segment.
        batch_size: Items per forward pass.
        show_progress_bar: Progress bars of the corpus job and the queries.
        embedder_kwargs: Constructor arguments when ``model`` is a name (with ``corpus_from``: only ``device``, and a
            ``preset`` equal to the store's; the queries are embedded with the store's own settings).
        allow_other_model: With ``corpus_from``: embed the queries with ``model`` although it is not the model that
            made the store (a copy of it elsewhere). Without it that is refused: queries of one model ranked against
            another's corpus give meaningless numbers.
        rerank: A second stage (:class:`~lco_embedding.LCOReranker`): every pair is also measured reranked (see
            the module).
        rerank_k: With ``rerank``: the first-stage documents per query it reranks.

    Raises:
        ValueError: A malformed dataset, a query that cannot be embedded (naming its id and line), a ``corpus_from``
            that lacks some of the corpus's ids, or made by another model than ``model``.
    """
    from lco_embedding.corpus import encode_corpus

    if isinstance(rerank_k, bool) or not isinstance(rerank_k, int) or rerank_k < 1:
        raise ValueError(f"rerank_k must be a positive integer, got {rerank_k!r}.")
    dataset = data if isinstance(data, Dataset) else load_dataset(data, split)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if corpus_from is None:
        table = folder / CORPUS_INPUT
        table.write_text(
            "".join(json.dumps({"id": key, **_corpus_row(row)}) + "\n" for key, row in dataset.corpus.items())
        )
        store = str(folder / CORPUS_FOLDER)
        encode_corpus(
            [table], store, model=model if model is not None else _default_model(), batch_size=batch_size,
            segment=segment, show_progress_bar=show_progress_bar, embedder_kwargs=embedder_kwargs,
        )  # fmt: skip
    else:
        store = corpus_from
    embedder = _embedder(model, store, embedder_kwargs, allow_other_model=allow_other_model)
    ids, modalities = _stored_rows(store, set(dataset.corpus))
    query_ids = [q for q in dataset.queries if q in dataset.qrels]
    items = [row_item(dataset.queries[q]) for q in query_ids]
    try:
        vectors = embedder.encode_query(items, batch_size=batch_size, show_progress_bar=show_progress_bar)
    except LCOInputError as e:
        if e.index is None:
            raise
        key = query_ids[e.index]
        raise ValueError(
            f"{dataset.folder / 'queries.jsonl'}, line {dataset.query_lines.get(key, '?')}: query {key!r} cannot be "
            f"embedded: {e.reason}"
        ) from e
    query_modality = {q: row_modality(dataset.queries[q]) for q in query_ids}
    doc_modality = {doc: modalities[doc] for doc in ids}
    grouped = "id" if any(count > 1 for count in ids.values()) else None

    queries = _Queries(query_ids, vectors, query_modality)
    second = None if rerank is None else _Reranking(rerank, rerank_k, dataset)
    pairs, per_query, reranked = _score_pairs(
        dataset, store, queries, doc_modality, k=k, grouped=grouped, calibrate=calibrate, rerank=second
    )
    result = EvalResult(pairs, per_query, corpus=str(store), out=folder)
    if reranked is not None:
        result.reranked, result.per_query_reranked = reranked
    _write(result, folder, dataset, embedder, calibrate, rerank)
    return result


@dataclass
class _Queries:
    ids: list[str]
    vectors: np.ndarray
    modality: dict[str, str]


class _Reranking:
    """The second stage of an evaluation: each (query, document) scored once by the reranker, from the dataset's
    rows."""

    def __init__(self, reranker: LCOReranker, k: int, dataset: Dataset) -> None:
        self.reranker, self.k, self.dataset = reranker, k, dataset
        self.scores: dict[tuple[str, str], float] = {}

    def run(self, run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """``run`` reranked: each query's first ``k`` documents in the reranker's order, then the rest in theirs
        (scores that give that order)."""
        reranked: dict[str, dict[str, float]] = {}
        for query, found in run.items():
            order = sorted(found, key=lambda doc: (-found[doc], doc))
            head, tail = order[: self.k], order[self.k :]
            scores = self._scores(query, head)
            head = sorted(head, key=lambda doc: (-scores[doc], order.index(doc)))
            reranked[query] = {doc: float(len(order) - at) for at, doc in enumerate(head + tail)}
        return reranked

    def _scores(self, query: str, docs: list[str]) -> dict[str, float]:
        missing = [doc for doc in docs if (query, doc) not in self.scores]
        if missing:
            item = row_item(self.dataset.queries[query])
            pairs = [(item, row_item(self.dataset.corpus[doc])) for doc in missing]
            try:
                found = self.reranker.predict(pairs)
            except LCOInputError as e:
                doc = missing[e.index] if e.index is not None else "?"
                raise ValueError(f"the reranker cannot read query {query!r} with document {doc!r}: {e.reason}") from e
            self.scores.update({(query, doc): float(score) for doc, score in zip(missing, found, strict=True)})
        return {doc: self.scores[(query, doc)] for doc in docs}


Metrics = dict[str, dict[str, float]]


def _score_pairs(
    dataset: Dataset,
    store: str,
    queries: _Queries,
    doc_modality: dict[str, str],
    *,
    k: int,
    grouped: str | None,
    calibrate: bool,
    rerank: _Reranking | None = None,
) -> tuple[Metrics, dict[str, Metrics], tuple[Metrics, dict[str, Metrics]] | None]:
    """The metrics of ``all -> all`` and of every query-modality -> corpus-modality pair with judged queries (and
    with ``rerank``, the same reranked)."""
    from lco_embedding.corpus import search_folder

    query_ids, vectors, query_modality = queries.ids, queries.vectors, queries.modality
    pairs: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    reranked: Metrics = {}
    per_query_reranked: dict[str, Metrics] = {}
    query_kinds = sorted(set(query_modality.values()))
    corpus_kinds = sorted(set(doc_modality.values()))
    plan = [(ALL, ALL)] + [(q, c) for q in query_kinds for c in corpus_kinds]
    for query_kind, corpus_kind in plan:
        chosen = [i for i, q in enumerate(query_ids) if query_kind == ALL or query_modality[q] == query_kind]
        qrels = {
            query_ids[i]: {
                d: s for d, s in dataset.qrels[query_ids[i]].items() if corpus_kind in (ALL, doc_modality.get(d))
            }
            for i in chosen
        }
        qrels = {q: judged for q, judged in qrels.items() if any(s > 0 for s in judged.values())}
        if not qrels:
            continue
        rows = [i for i in chosen if query_ids[i] in qrels]
        kinds = [query_modality[query_ids[i]] for i in rows]
        within = None if corpus_kind == ALL else {corpus_kind}
        run = _run(
            search_folder, store, vectors[rows], [query_ids[i] for i in rows], kinds,
            k=k, modalities=within, grouped=grouped, calibrate=calibrate and corpus_kind == ALL,
        )  # fmt: skip
        means, each = score_run(run, qrels)
        name = _pair(query_kind, corpus_kind)
        pairs[name] = {"queries": float(len(each)), **means}
        per_query[name] = each
        if rerank is not None:
            means, each = score_run(rerank.run(run), qrels)
            reranked[name] = {"queries": float(len(each)), **means}
            per_query_reranked[name] = each
    return pairs, per_query, (reranked, per_query_reranked) if rerank is not None else None


def _corpus_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "_id"}


def _default_model() -> str:
    from lco_embedding.corpus.job_options import DEFAULT_MODEL

    return DEFAULT_MODEL


def _embedder(
    model: LCOEmbedder | str | None,
    store: str,
    embedder_kwargs: dict[str, Any] | None,
    *,
    allow_other_model: bool = False,
) -> Any:
    """The model that embeds the queries: the one that made the store, loaded as its manifest records it
    (:func:`~lco_embedding.corpus.description.load_store_model`: revision, dtype, quantization, settings), or
    ``model`` when it is that model (or ``allow_other_model``)."""
    from lco_embedding.corpus import open_store
    from lco_embedding.corpus.description import load_store_model, store_model_differences

    opened = open_store(store)
    try:
        manifest = opened.manifest
    finally:
        opened.close()
    if model is not None:
        differences = store_model_differences(model, manifest)
        if differences and not allow_other_model:
            raise ValueError(
                f"{store!r} was embedded by another model than the one given for the queries "
                f"({'; '.join(differences)}): its scores would be meaningless. Leave out the model to use the store's, "
                "or say it is a copy of the store's model (--allow-other-model, allow_other_model=True)."
            )
        if not isinstance(model, str):
            return model
    kwargs = embedder_kwargs or {}
    copy = model if model is not None and differences else None  # a copy of the store's model elsewhere
    return load_store_model(manifest, model=copy, device=kwargs.get("device"), preset=kwargs.get("preset"))


def _stored_rows(store: str, wanted: set[str]) -> tuple[dict[str, int], dict[str, str]]:
    """The store's ids (-> rows each: segments) and their modalities; every corpus id must be there (failed
    items are not, and are named)."""
    from lco_embedding.corpus import open_store

    opened = open_store(store)
    counts: dict[str, int] = {}
    modality: dict[str, str] = {}
    try:
        for _, _, extra in opened.iter_embeddings(("id", "modality")):
            for key, kind in zip(extra["id"], extra["modality"], strict=True):
                counts[key] = counts.get(key, 0) + 1
                modality[key] = kind
        failures = opened.read_errors()
    finally:
        opened.close()
    missing = sorted(wanted - set(counts))
    if missing:
        failed = {str(f.get("id")): f.get("error") for f in failures}
        named = ", ".join(f"{m!r}" + (f" ({failed[m]})" if m in failed else "") for m in missing[:5])
        raise ValueError(
            f"{len(missing)} corpus document(s) have no embedding in {store!r}: {named}. Fix them (see its errors), "
            "or leave out --corpus-from to embed the corpus again."
        )
    return {key: counts[key] for key in wanted}, modality


def _run(
    search: Any,
    store: str,
    vectors: np.ndarray,
    query_ids: list[str],
    query_modalities: list[str],
    *,
    k: int,
    modalities: set[str] | None,
    grouped: str | None,
    calibrate: bool,
) -> dict[str, dict[str, float]]:
    """query id -> {document id -> score} of the top ``k`` documents (by their best row)."""
    run: dict[str, dict[str, float]] = {q: {} for q in query_ids}
    by_kind: dict[str, list[int]] = {}
    for i, kind in enumerate(query_modalities):
        by_kind.setdefault(kind, []).append(i)
    for kind, rows in by_kind.items():  # calibration standardises by the query's modality
        hits = search(
            store, vectors[rows], k, modalities=modalities, group_by=grouped, calibrate=calibrate, query_modality=kind
        )
        for row, found in zip(rows, hits, strict=True):
            for hit in found:
                scores = run[query_ids[row]]
                scores[hit.id] = max(scores.get(hit.id, float("-inf")), hit.score)
    return run


def _write(
    result: EvalResult,
    folder: Path,
    dataset: Dataset,
    embedder: LCOEmbedder,
    calibrate: bool,
    rerank: LCOReranker | None = None,
) -> None:
    document = {
        "dataset": str(dataset.folder),
        "split": dataset.split,
        "corpus": result.corpus,
        "model": getattr(embedder, "model_name_or_path", None),
        "settings": embedder.settings(),
        "calibrate": calibrate,
        "metrics": list(METRICS),
        "pairs": result.pairs,
        "per_query": result.per_query,
    }
    if rerank is not None:
        document["rerank"] = {"model": str(rerank.model_name_or_path), "backend": rerank.backend}
        document["reranked"] = result.reranked
        document["per_query_reranked"] = result.per_query_reranked
    (folder / RESULTS_FILE).write_text(json.dumps(document, indent=1, ensure_ascii=False, default=str) + "\n")
    (folder / "results.md").write_text(result.table() + "\n")
    try:
        _chart(result, folder / "results.png")
    except ImportError:
        logger.info("matplotlib is not installed: no results.png (pip install 'lco-embedding[analysis]').")


def _chart(result: EvalResult, path: Path) -> None:
    """A grouped bar chart: nDCG@10, recall@10 and MRR@10 per pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("ndcg@10", "recall@10", "mrr@10")
    rows = result.rows()  # with a reranker, each pair's reranked bars beside its own
    names = [name for name, _ in rows]
    x = np.arange(len(names))
    width = 0.8 / len(shown)
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4))
    for i, metric in enumerate(shown):
        axis.bar(x + (i - 1) * width, [values[metric] for _, values in rows], width, label=metric)
    axis.set_xticks(x, names, rotation=30, ha="right")
    axis.set_ylim(0, 1.2)
    axis.set_ylabel("score")
    axis.set_title("Retrieval by query -> corpus modality")
    axis.legend(loc="upper center", ncol=len(shown), frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
