"""Exact search against brute force, ties, filters, quantized shards, and the usearch index."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lco_embedding.corpus import build_index, parquet_store, search_folder
from tests.corpus.conftest import write_folder


@pytest.fixture
def small_row_groups(monkeypatch):
    monkeypatch.setattr(parquet_store, "ROW_GROUP_ROWS", 7)  # many chunks per shard


def test_exact_search_equals_brute_force(tmp_path, unit_vectors, small_row_groups):
    vectors = unit_vectors(90, 24)
    write_folder(tmp_path / "out", vectors, shard_size=25, errors_every=11)
    kept = np.array([p for p in range(90) if p % 11 != 10])
    queries = unit_vectors(5, 24, seed=1)
    results = search_folder(tmp_path / "out", queries, k=10, exact=True)
    scores = queries @ vectors[kept].T
    for query, hits in enumerate(results):
        order = np.argsort(-scores[query], kind="stable")[:10]
        assert [h.row for h in hits] == order.tolist()
        assert [h.id for h in hits] == [f"item-{kept[r]}" for r in order]
        np.testing.assert_allclose([h.score for h in hits], scores[query][order], atol=1e-6)
        assert [h.rank for h in hits] == list(range(1, 11))


def test_ties_go_to_the_earlier_row_and_k_above_the_row_count(tmp_path, unit_vectors, small_row_groups):
    vectors = np.repeat(unit_vectors(1, 8), 20, axis=0)
    write_folder(tmp_path / "out", vectors, shard_size=6)
    (hits,) = search_folder(tmp_path / "out", vectors[0], k=50)
    assert [h.row for h in hits] == list(range(20))


def test_modality_filter(tmp_path, unit_vectors, small_row_groups):
    vectors = unit_vectors(40, 16)
    modalities = ["image" if p % 3 == 0 else "text" for p in range(40)]
    write_folder(tmp_path / "out", vectors, modalities, shard_size=15)
    (hits,) = search_folder(tmp_path / "out", vectors[4], k=40, modalities={"image"})
    assert {h.modality for h in hits} == {"image"} and len(hits) == 14
    assert hits[0].row != 4 and hits[0].score < 0.999  # row 4 is text
    with pytest.raises(ValueError, match="dimensions"):
        search_folder(tmp_path / "out", np.ones(5, np.float32))


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_quantized_shards_find_each_item_itself(tmp_path, unit_vectors, precision):
    vectors = unit_vectors(60, 64)
    write_folder(tmp_path / "out", vectors, shard_size=25, precision=precision)
    results = search_folder(tmp_path / "out", vectors[:20], k=1)
    assert [hits[0].row for hits in results] == list(range(20))


def test_the_index_agrees_with_the_exact_search_and_is_not_used_when_stale(tmp_path, unit_vectors, caplog):
    vectors = unit_vectors(600, 32)
    out = tmp_path / "out"
    write_folder(out, vectors, shard_size=200)
    entry = build_index(out)
    assert entry["file"] == "index.usearch" and parquet_store.OutputFolder(out).manifest["index"]["rows"] == 600
    assert (out / "index.usearch").is_file()
    queries = unit_vectors(20, 32, seed=3)
    exact = search_folder(out, queries, k=10, exact=True)
    approximate = search_folder(out, queries, k=10)  # the index is current: used by default
    # HNSW is approximate (and its multi-threaded build is not deterministic): rates, not every query. Measured
    # over repeated builds: recall@10 >= 0.995, top-1 agreement 1.0, self-hits >= 0.99.
    pairs = list(zip(approximate, exact, strict=True))
    recall = np.mean([len({h.row for h in a} & {h.row for h in e}) / 10 for a, e in pairs])
    assert recall >= 0.95
    assert np.mean([a[0].row == e[0].row for a, e in pairs]) >= 0.9
    for a, e in pairs:
        same = [(h.score, g.score) for h in a for g in e if h.row == g.row]
        assert all(abs(x - y) < 2e-3 for x, y in same)  # f16 storage
    self_hits = search_folder(out, vectors[:100], k=1, exact=False)
    assert np.mean([hits[0].row == i for i, hits in enumerate(self_hits)]) >= 0.95
    # More rows committed after the index was built: the index is stale and the search falls back to exact.
    folder = parquet_store.OutputFolder(out)
    manifest = folder.manifest
    manifest["counts"]["embedded"] += 1
    folder.write_manifest(manifest)
    with caplog.at_level(logging.WARNING):
        search_folder(out, queries[:1], k=3)
    assert "does not cover every row" in caplog.text
    with pytest.raises(ValueError, match="no current index"):
        search_folder(out, queries[:1], k=3, exact=False)


def test_without_usearch_the_error_names_the_extra(tmp_path, unit_vectors, monkeypatch):
    import sys

    write_folder(tmp_path / "out", unit_vectors(5, 8))
    monkeypatch.setitem(sys.modules, "usearch", None)
    with pytest.raises(ImportError, match=r"pip install 'lco-embedding\[index\]'"):
        build_index(tmp_path / "out")
