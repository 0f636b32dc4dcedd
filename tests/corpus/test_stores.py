"""LanceDB and Milvus stores against the Parquet folder (no model: rows written through the stores): the same rows,
the same search (exact, filtered, grouped, per modality, calibrated), recovery after a write the manifest never
committed, export, targets, and modality-aware ranking on a corpus built with known modality offsets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lco_embedding.corpus import build_index, export_folder, open_store, read_embeddings, search_folder
from lco_embedding.corpus.search import search_per_modality
from lco_embedding.corpus.targets import parse_lancedb, parse_milvus
from lco_embedding.testing import modality_offset_corpus, peak_memory_growth
from tests.corpus.conftest import write_folder

TOL = 1e-5
KINDS = ("lancedb", "milvus")
MODALITIES = ("text", "image", "audio", "video")


def target(kind: str, root) -> str:
    return {"lancedb": f"lancedb://{root}/db/corpus", "milvus": f"milvus://{root}/corpus.db/corpus"}[kind]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, request):
    """One corpus (90 positions, 8 failed, four modalities, segments and extra columns) in a folder and in each
    store."""
    root = tmp_path_factory.mktemp("stores")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((90, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    modalities = [MODALITIES[p % 4] for p in range(90)]
    extras = {
        "year": ("int64", [2000 + p % 30 for p in range(90)]),
        "lang": ("string", [("en", "fr")[p % 2] for p in range(90)]),
    }
    segments = [(p % 2, float(p % 2) * 30.0, float(p % 2) * 30.0 + 30.0) for p in range(90)]
    options = {"shard_size": 25, "errors_every": 11, "extras": extras, "segments": segments}
    folders = {"parquet": root / "folder"}
    write_folder(folders["parquet"], vectors, modalities, **options)
    for kind in KINDS:
        folders[kind] = target(kind, root)
        write_folder(folders[kind], vectors, modalities, **options)
    return folders, vectors, modalities


def _same_hits(got, expected):
    assert [h.id for h in got] == [h.id for h in expected]
    assert [h.row for h in got] == [h.row for h in expected]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], atol=TOL, rtol=0)
    assert [(h.modality, h.source, h.segment, h.start, h.end, h.extra) for h in got] == [
        (h.modality, h.source, h.segment, h.start, h.end, h.extra) for h in expected
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_holds_the_folders_rows_and_failures(corpus, kind):
    folders = corpus[0]
    expected, got = read_embeddings(folders["parquet"]), read_embeddings(folders[kind])
    assert got.column("row").to_pylist() == list(range(expected.num_rows))
    assert got.drop_columns(["row", "embedding"]).to_pylist() == expected.drop_columns(["embedding"]).to_pylist()
    embeddings = [np.stack(t.column("embedding").to_numpy(zero_copy_only=False)) for t in (got, expected)]
    np.testing.assert_allclose(embeddings[0], embeddings[1], atol=1e-6, rtol=0)
    store = open_store(folders[kind])
    try:
        assert store.read_errors() == open_store(folders["parquet"]).read_errors()
        assert len(store.read_errors()) == 8 and store.manifest["counts"]["embedded"] == 82
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_search_equals_the_folders_with_and_without_filters(corpus, kind):
    folders, vectors, _ = corpus
    queries = np.random.default_rng(1).standard_normal((4, 24)).astype(np.float32)
    cases = [
        {},
        {"modalities": {"image"}},
        {"modalities": {"audio", "video"}},
        {"group_by": "source"},
        {"modalities": {"text"}, "group_by": "source"},
        {"calibrate": True, "query_modality": "text"},
        {"calibrate": True, "query_modality": "image", "modalities": {"image", "text"}},
    ]
    for case in cases:
        expected = search_folder(folders["parquet"], queries, k=7, **case)
        got = search_folder(folders[kind], queries, k=7, **case)
        for a, b in zip(got, expected, strict=True):
            _same_hits(a, b)
    per = search_per_modality(folders[kind], queries, k=3)
    for got, expected in zip(per, search_per_modality(folders["parquet"], queries, k=3), strict=True):
        assert list(got) == list(expected)
        for modality in got:
            _same_hits(got[modality], expected[modality])
    assert list(per[0]) == list(MODALITIES) and all(len(hits) == 3 for hits in per[0].values())
    assert all(h.modality == m for query in per for m, hits in query.items() for h in hits)


@pytest.mark.parametrize("kind", KINDS)
def test_where_filters_on_the_tables_columns(corpus, kind):
    folders, vectors, _ = corpus
    where = {"lancedb": "year >= 2015 AND lang = 'fr'", "milvus": "year >= 2015 and lang == 'fr'"}[kind]
    hits = search_folder(folders[kind], vectors[5], k=50, where=where)[0]
    assert hits and all(h.extra["year"] >= 2015 and h.extra["lang"] == "fr" for h in hits)
    everything = search_folder(folders["parquet"], vectors[5], k=100)[0]
    expected = [h for h in everything if h.extra["year"] >= 2015 and h.extra["lang"] == "fr"]
    _same_hits(hits, expected)
    with pytest.raises(ValueError, match="takes no filter expression"):
        search_folder(folders["parquet"], vectors[5], where="year > 1")


@pytest.mark.parametrize("kind", KINDS)
def test_an_uncommitted_write_is_never_seen_and_is_removed_on_recovery(tmp_path, unit_vectors, kind):
    vectors = unit_vectors(30, 8)
    # The rows of a shard are written, then the process dies before the manifest is committed.
    out = _with_uncommitted_row(kind, tmp_path, vectors, modality="text")
    hits = search_folder(out, vectors[0], k=40)[0]
    assert len(hits) == 30 and "ghost" not in {h.id for h in hits}
    assert read_embeddings(out).num_rows == 30
    store = open_store(out)
    store.lock()
    store.recover()
    store.close()
    store = open_store(out)
    try:
        if kind == "milvus":
            store.lock()
            store._ready(store.collection)
            assert store.client().query(store.collection, filter="row >= 30", output_fields=["row"]) == []
        else:
            assert store.table().count_rows() == 30
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_export_copies_a_folder_and_resumes(corpus, tmp_path, kind):
    folders = corpus[0]
    out = target(kind, tmp_path)
    written = export_folder(folders["parquet"], out)
    assert written["counts"] == open_store(folders["parquet"]).manifest["counts"]
    expected, got = read_embeddings(folders["parquet"]), read_embeddings(out)
    assert got.drop_columns(["row", "embedding"]).to_pylist() == expected.drop_columns(["embedding"]).to_pylist()
    assert export_folder(folders["parquet"], out)["counts"] == written["counts"]  # nothing left to copy
    with pytest.raises(ValueError, match="not a store"):
        export_folder(folders["parquet"], str(tmp_path / "plain"))


@pytest.mark.parametrize("kind", KINDS)
def test_index_and_the_calibration_are_recorded(tmp_path, unit_vectors, kind):
    out = target(kind, tmp_path)
    vectors = unit_vectors(300, 16)
    write_folder(out, vectors, [MODALITIES[p % 2] for p in range(300)], shard_size=100)
    entry = build_index(out)
    store = open_store(out)
    try:
        manifest = store.manifest
    finally:
        store.close()
    assert manifest["index"] == entry and entry["rows"] == 300
    assert set(manifest["calibration"]["modalities"]) == {"text", "image"}
    hits = search_folder(out, vectors[:20], k=1)
    assert np.mean([h[0].row == i for i, h in enumerate(hits)]) >= 0.9  # approximate on Milvus's HNSW
    exact = search_folder(out, vectors[:5], k=5, exact=True)
    assert [h[0].row for h in exact] == list(range(5))


@pytest.mark.parametrize(
    "given, expected",
    [
        ("lancedb://emb", ("emb", "embeddings")),
        ("lancedb://./emb/", ("emb", "embeddings")),
        ("lancedb://data/emb/corpus", ("data/emb", "corpus")),
        ("lancedb:///srv/db/corpus", ("/srv/db", "corpus")),
    ],
)
def test_lancedb_targets(given, expected):
    database, table = parse_lancedb(given)
    assert (str(database), table) == expected


@pytest.mark.parametrize(
    "given, expected",
    [
        ("milvus://corpus.db", ("corpus.db", "embeddings")),
        ("milvus://data/corpus.db/photos", ("data/corpus.db", "photos")),
        ("milvus://localhost:19530/photos", ("http://localhost:19530", "photos")),
        ("milvus+https://milvus.example.com:443", ("https://milvus.example.com:443", "embeddings")),
    ],
)
def test_milvus_targets(given, expected):
    assert parse_milvus(given) == expected


@pytest.mark.parametrize(
    "given, message",
    [
        ("lancedb://", "names no database folder"),
        ("lancedb://db/bad name", "not a table name"),
        ("milvus://somewhere/photos", "neither a milvus-lite file"),
        ("milvus://corpus.db/a/b", "one collection name"),
        ("milvus://corpus.db/bad-name", "not a collection name"),
    ],
)
def test_malformed_targets_say_what_is_accepted(given, message):
    with pytest.raises(ValueError, match=message):
        open_store(given)


# ------------------------------------------------------------------------------------------ modality-aware ranking
@pytest.mark.parametrize("kind", ("parquet", *KINDS))
def test_calibration_undoes_known_modality_offsets(tmp_path, kind):
    vectors, modalities, topic_of, queries = modality_offset_corpus(np.random.default_rng(7))
    out = str(tmp_path / "folder") if kind == "parquet" else target(kind, tmp_path)
    write_folder(out, vectors, modalities, shard_size=50)

    def rank(hits, topic, modality):
        found = [i for i, h in enumerate(hits) if topic_of[h.row] == topic and h.modality == modality]
        return found[0] + 1 if found else len(hits) + 1

    raw = search_folder(out, queries, k=80)
    calibrated = search_folder(out, queries, k=80, calibrate=True, query_modality="text")
    for modality in ("image", "audio", "video"):
        # Raw: all 40 texts come first, so the query's own image, sound and clip rank past 40.
        assert min(rank(hits, t, modality) for t, hits in enumerate(raw)) > 40, modality
        # Calibrated: they rank in the top 4, with the query's own text.
        assert all(rank(hits, t, modality) <= 4 for t, hits in enumerate(calibrated)), modality
    assert all({topic_of[h.row] for h in hits[:4]} == {t} for t, hits in enumerate(calibrated))
    query = queries[0] / np.linalg.norm(queries[0])
    assert all(abs(h.cosine - float(query @ vectors[h.row])) < TOL for h in calibrated[0])
    assert all(h.cosine == h.score for h in raw[0])


# ------------------------------------------------------------------------------------------------ bad inputs
def _with_uncommitted_row(kind, root, vectors, modality="image"):
    """A store of ``vectors`` (every other row text, image) plus one row a killed writer left uncommitted, as
    ``test_an_uncommitted_write_is_never_seen_and_is_removed_on_recovery`` writes it."""
    out = target(kind, root)
    n, dimension = vectors.shape
    write_folder(out, vectors, [("text", "image")[p % 2] for p in range(n)], shard_size=10)
    store = open_store(out)
    store.lock()
    manifest = store.manifest
    ghost = pa.table(
        {
            "id": ["ghost"],
            "source": ["/ghost"],
            "modality": [modality],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors[0]), dimension),
        }
    )
    if kind == "milvus":
        store._ready(store.collection)
        store.client().upsert(store.collection, [{**ghost.to_pylist()[0], "row": n}])
    else:
        uncommitted = {**manifest, "counts": {**manifest["counts"], "embedded": n + 1}}
        store.write_rows(uncommitted, {"index": 9, "start": n, "end": n + 1, "rows": 1, "failed": 0}, ghost)
    store.close()
    return out


BREAKOUTS = {
    "lancedb": ["1=1) OR (1=1", "id = 'x') OR (row >= 0", "TRUE) OR (TRUE"],
    "milvus": ["1==1) or (1==1", 'id == "x") or (row >= 0', "true) or (true"],
}


@pytest.mark.parametrize("kind", KINDS)
def test_no_filter_string_widens_what_a_search_sees(tmp_path, unit_vectors, kind):
    vectors = unit_vectors(20, 8)
    out = _with_uncommitted_row(kind, tmp_path, vectors)
    for where in BREAKOUTS[kind]:
        for options in ({}, {"modalities": {"image"}}, {"group_by": "source"}, {"calibrate": True}, {"exact": True}):
            hits = search_folder(out, vectors[0], k=50, where=where, **options)[0]
            assert "ghost" not in {h.id for h in hits} and len(hits) == (10 if "modalities" in options else 20)
            if "modalities" in options:
                assert {h.modality for h in hits} == {"image"}, where  # the filter does not widen modalities either
        per = search_per_modality(out, vectors[0], k=50, where=where)[0]
        assert "ghost" not in {h.id for hits in per.values() for h in hits}
        assert {m: len(hits) for m, hits in per.items()} == {"text": 10, "image": 10}
        store = open_store(out)
        try:
            scanned = [row for rows, _, _ in store.iter_embeddings(("id",), where) for row in rows.tolist()]
        finally:
            store.close()
        assert sorted(scanned) == list(range(20)), where


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["year >", "id == 'x", "nope == 1", "DROP TABLE corpus"])
def test_a_filter_the_store_cannot_parse_is_a_one_line_error(tmp_path, unit_vectors, kind, where, capfd):
    vectors = unit_vectors(12, 8)
    out = target(kind, tmp_path)
    write_folder(out, vectors, shard_size=6)
    with pytest.raises(ValueError, match="cannot apply the filter") as raised:
        search_folder(out, vectors[0], k=3, where=where)
    assert where in str(raised.value) and "\n" not in str(raised.value)
    assert "Traceback" not in capfd.readouterr().err  # no client library's logged traceback
    assert read_embeddings(out).num_rows == 12  # the data is intact


@pytest.mark.parametrize("kind", ("parquet", *KINDS))
def test_k_beyond_the_rows_asks_for_the_rows_there_are(tmp_path, unit_vectors, kind):
    vectors = unit_vectors(8, 8)
    out = str(tmp_path / "folder") if kind == "parquet" else target(kind, tmp_path)
    write_folder(out, vectors, shard_size=4)
    search_folder(out, vectors[0], k=8)  # the store's client warmed up, so the growth below is the search's own
    hits, grown = peak_memory_growth(lambda: search_folder(out, vectors[:2], k=100_000_000))
    assert [len(h) for h in hits] == [8, 8] and grown < 100 * 2**20


@pytest.mark.parametrize("kind", ("parquet", *KINDS))
def test_a_query_that_is_not_finite_is_refused(tmp_path, unit_vectors, kind):
    vectors = unit_vectors(6, 8)
    out = str(tmp_path / "folder") if kind == "parquet" else target(kind, tmp_path)
    write_folder(out, vectors, shard_size=6)
    for bad in (np.full(8, np.nan, np.float32), np.r_[np.ones(7), np.inf].astype(np.float32)):
        with pytest.raises(ValueError, match="query 1 has a value that is not a finite number"):
            search_folder(out, np.stack([vectors[0], bad]), k=3)


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_with_no_rows_answers_empty(tmp_path, unit_vectors, kind):
    out = target(kind, tmp_path)
    write_folder(out, unit_vectors(4, 8), shard_size=4, errors_every=1)  # every item failed
    assert search_folder(out, unit_vectors(1, 8)[0], k=5) == [[]]
    assert search_folder(out, unit_vectors(1, 8)[0], k=5, where="id != 'x'" if kind == "lancedb" else 'id != "x"') == [
        []
    ]


def test_object_storage_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="object storage"):
        open_store("lancedb://s3://bucket/corpus")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout", ["file", "folder"])
def test_a_path_that_is_not_a_milvus_lite_database_says_so(tmp_path, layout):
    path = tmp_path / "notmilvus.db"
    if layout == "file":
        path.write_text("not a database")
    else:
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a milvus-lite database") as raised:
        open_store(f"milvus://{path}/corpus").exists()
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("kind", ("parquet", *KINDS))
def test_calibration_of_a_modality_whose_rows_are_identical_stays_bounded(tmp_path, unit_vectors, kind):
    vectors = unit_vectors(12, 8)
    vectors[11] = vectors[10]  # the only two images: identical, so their cosine with each other never varies
    modalities = ["text"] * 10 + ["image", "image"]
    out = str(tmp_path / "folder") if kind == "parquet" else target(kind, tmp_path)
    write_folder(out, vectors, modalities, shard_size=6)
    for query, query_modality in ((vectors[0], "image"), (vectors[10], "image"), (vectors[0], "text")):
        hits = search_folder(out, query, k=12, calibrate=True, query_modality=query_modality)[0]
        assert len(hits) == 12 and all(abs(h.score) < 20 for h in hits), [h.score for h in hits]
        assert np.isfinite([h.score for h in hits]).all()
