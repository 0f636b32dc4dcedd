"""``lco-embed encode --out lancedb://`` and ``milvus://`` as subprocesses: a corpus of text, images, audio, video and
segmented long audio, ``kill -9``'d at three moments and resumed, equals the uninterrupted run row for row; and
``search`` / ``index`` / ``export`` give what they give on the Parquet folder of the same corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lco_embedding.corpus import open_store, read_embeddings
from lco_embedding.testing import write_wav
from tests.cli.conftest import copy_media, kill_at, run_cli

TOL = 1e-5
ROW_TOL = 1e-6
KINDS = ("lancedb", "milvus")


def target(kind: str, root, name: str) -> str:
    return {"lancedb": f"lancedb://{root}/db/{name}", "milvus": f"milvus://{root}/{name}.db/corpus"}[kind]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media, tiny_omni):
    root = tmp_path_factory.mktemp("stores")
    copy_media(
        media,
        root / "data",
        {"a.png": "png", "b.jpg": "jpg", "c.png": "png_rgba", "d.wav": "wav", "e.flac": "flac", "f.mp4": "mp4"},
    )
    copy_media(media, root / "data", {"z_corrupt.png": "corrupt_png"})
    t = np.arange(25 * 16000) / 16000
    write_wav(root / "data" / "long.wav", 0.3 * np.sin(2 * np.pi * (220 + 6 * t) * t), 16000)
    rows = [
        {"id": f"t{i}", "text": f"sentence {i} about " + "cats " * (i % 5), "n": i, "lang": ("en", "fr")[i % 2]}
        for i in range(14)
    ]
    (root / "texts.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["encode", root / "data", root / "texts.jsonl", "--model", tiny_omni, "--segment", "audio=10s"]
    args += ["--shard-size", 4, "--batch-size", 2, "-q"]
    run_cli(*args, "--out", root / "folder")
    return root, args


def _hits(*args) -> list[dict]:
    return json.loads(run_cli("search", *args, "--json").stdout)


_FOLDER_HITS: dict[tuple[str, ...], list[dict]] = {}


def _folder_hits(*args) -> list[dict]:
    """The Parquet folder's hits, searched once for both stores compared with it (the folder does not change)."""
    key = tuple(str(arg) for arg in args)
    if key not in _FOLDER_HITS:
        _FOLDER_HITS[key] = _hits(*args)
    return _FOLDER_HITS[key]


def _same(got: list[dict], expected: list[dict]) -> None:
    assert [(h["id"], h.get("segment"), h.get("start")) for h in got] == [
        (h["id"], h.get("segment"), h.get("start")) for h in expected
    ]
    np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in expected], atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_at_three_moments_then_resume_equals_an_uninterrupted_run(corpus, kind):
    root, args = corpus
    whole, cut = target(kind, root, "whole"), target(kind, root, "cut")
    run_cli(*args, "--out", whole)
    kill_at([*args, "--out", cut], "commit:2")  # right after the second shard's commit
    kill_at([*args, "--out", cut], "record:6")  # in the resumed run: one more commit, then a shard half written
    kill_at([*args, "--out", cut], "start")  # while starting up
    store = open_store(cut)
    try:
        partial = store.manifest["counts"]
    finally:
        store.close()
    assert partial["done"] == 4 * 3 and partial["total"] == 22
    result = run_cli(*args, "--out", cut)
    assert f"Resumed at item {partial['done']}" in result.stdout

    folder, expected, got = (read_embeddings(t) for t in (root / "folder", whole, cut))
    assert got.to_pylist() != [] and got.column_names == expected.column_names
    assert got.drop_columns(["embedding"]).to_pylist() == expected.drop_columns(["embedding"]).to_pylist()
    vectors = [np.stack(t.column("embedding").to_numpy(zero_copy_only=False)) for t in (got, expected, folder)]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=ROW_TOL, rtol=0)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=ROW_TOL, rtol=0)
    assert expected.drop_columns(["row", "embedding"]).to_pylist() == folder.drop_columns(["embedding"]).to_pylist()
    assert got.column("row").to_pylist() == list(range(got.num_rows))
    assert {"image", "audio", "video", "text"} <= set(got.column("modality").to_pylist())
    assert max(s for s in got.column("segment").to_pylist() if s is not None) == 2  # 25 s: three 10-s windows
    refused = run_cli(*args, "--no-normalize", "--out", cut, check=False)  # changed options: refused, as a folder
    assert refused.returncode != 0 and "holds embeddings made with another model, other options" in refused.stderr
    store = open_store(cut)
    try:
        failures = store.read_errors()
        assert [f["id"].rsplit("/", 1)[-1] for f in failures] == ["z_corrupt.png"]
        assert store.manifest["counts"] == {"total": 22, "done": 22, "embedded": 23, "failed": 1}
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_search_index_and_export_equal_the_folders(corpus, kind):
    root, args = corpus
    store = target(kind, root, "exported")
    run_cli("export", root / "folder", store)
    folder = str(root / "folder")
    text, image = ["sentence 3 about cats"], ["--image", root / "data" / "a.png"]
    # Each option once, with a text and an image query between them (the store's search against the folder's scan).
    for query, options in (
        (text, []),
        (image, []),
        (image, ["--only", "image"]),
        (text, ["--only", "audio", "--group-by", "source"]),
        (image, ["--calibrate"]),
    ):
        _same(_hits(store, *query, "-k", 6, *options), _folder_hits(folder, *query, "-k", 6, *options))
    where = {"lancedb": "n >= 5 AND lang = 'en'", "milvus": "n >= 5 and lang == 'en'"}[kind]
    filtered = _hits(store, "sentence 3", "-k", 30, "--where", where)
    everything = _folder_hits(folder, "sentence 3", "-k", 100)
    expected = [h for h in everything if h.get("extra", {}).get("n") is not None]
    expected = [h for h in expected if h["extra"]["n"] >= 5 and h["extra"]["lang"] == "en"]
    _same(filtered, expected)
    side = json.loads(run_cli("search", store, "sentence 3", "--per-modality", 2, "--json").stdout)
    assert {m: len(h) for m, h in side.items()} == {"text": 2, "image": 2, "audio": 2, "video": 1}
    printed = run_cli("index", store).stdout
    assert "calibration" in printed
    _same(
        _hits(store, "sentence 3 about cats", "-k", 6, "--exact"),
        _folder_hits(folder, "sentence 3 about cats", "-k", 6),
    )
    refused = run_cli("encode", root / "texts.jsonl", "--out", store, "--precision", "int8", check=False)
    assert refused.returncode != 0 and "precision 'int8' is for Parquet folders" in refused.stderr
    bad = {"lancedb": "n >= 5 AND (lang = 'en'", "milvus": "n >= 5 and lang == 'en"}[kind]
    refused = run_cli("search", store, "sentence 3", "--where", bad, "-q", check=False)  # one line, no traceback
    assert refused.returncode == 1 and "cannot apply the filter" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_a_path_that_is_not_a_store_is_one_line(tmp_path):
    (tmp_path / "notmilvus.db").write_text("not a database")
    refused = run_cli("search", f"milvus://{tmp_path}/notmilvus.db/corpus", "cat", "-q", check=False)
    assert refused.returncode == 1 and "is not a milvus-lite database" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    (tmp_path / "texts.jsonl").write_text('{"text": "a cat"}\n')
    refused = run_cli("encode", "texts.jsonl", "--out", "lancedb://s3://bucket/corpus", check=False, cwd=tmp_path)
    assert refused.returncode != 0 and "object storage" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notmilvus.db", "texts.jsonl"]  # no s3:/ folder made
