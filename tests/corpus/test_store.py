"""The output folder: atomic commits, recovery from a crash at the commit point, the writer lock."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lco_embedding.corpus import OutputFolder, encode_corpus, read_embeddings
from lco_embedding.corpus.manifest_folder import MANIFEST_FILE
from tests.corpus.conftest import write_folder


def test_shards_read_back_in_order(tmp_path, unit_vectors):
    vectors = unit_vectors(60, 16)
    folder = write_folder(tmp_path / "out", vectors, shard_size=25, errors_every=7)
    table = read_embeddings(folder.path)
    kept = [p for p in range(60) if p % 7 != 6]
    assert table.column("id").to_pylist() == [f"item-{p}" for p in kept]
    stored = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(stored, vectors[kept])
    assert [s["file"] for s in folder.manifest["shards"]] == [f"part-0000{i}.parquet" for i in range(3)]
    errors = [json.loads(line) for line in folder.errors_path.read_text().splitlines()]
    assert [e["position"] for e in errors] == [p for p in range(60) if p % 7 == 6]
    assert folder.rows([40, 3]) == [
        {"id": f"item-{kept[40]}", "source": f"/data/{kept[40]}", "modality": "text"},
        {"id": "item-3", "source": "/data/3", "modality": "text"},
    ]


def test_a_crash_before_the_manifest_commit_leaves_nothing_behind(tmp_path, unit_vectors, monkeypatch):
    vectors = unit_vectors(50, 8)
    out = tmp_path / "out"
    calls = {"n": 0}
    real = OutputFolder.write_manifest

    def crash_on_third_commit(self, manifest):
        calls["n"] += 1
        if calls["n"] == 3:  # create + first shard went through; the second shard's commit "dies" here
            raise KeyboardInterrupt("simulated kill between the shard's rename and the manifest's")
        real(self, manifest)

    monkeypatch.setattr(OutputFolder, "write_manifest", crash_on_third_commit)
    with pytest.raises(KeyboardInterrupt):
        write_folder(out, vectors, shard_size=20, errors_every=5)
    monkeypatch.undo()
    # The second shard's file and its errors were written, but never committed.
    assert (out / "part-00001.parquet").exists()
    committed = json.loads((out / MANIFEST_FILE).read_text())
    assert [s["file"] for s in committed["shards"]] == ["part-00000.parquet"]
    assert (out / "errors.jsonl").stat().st_size > committed["errors_bytes"]
    folder = OutputFolder(out)
    folder.recover()
    assert not (out / "part-00001.parquet").exists()
    assert (out / "errors.jsonl").stat().st_size == committed["errors_bytes"]
    assert len((out / "errors.jsonl").read_text().splitlines()) == 4  # positions 4, 9, 14, 19


def test_one_writer_at_a_time(tmp_path):
    first = OutputFolder(tmp_path / "out")
    first.lock()
    with pytest.raises(RuntimeError, match="another lco-embed process is writing"):
        OutputFolder(tmp_path / "out").lock()
    first.unlock()
    OutputFolder(tmp_path / "out").lock()


def test_a_folder_of_other_files_is_refused_before_any_model_is_loaded(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an lco-embed output folder"):
        encode_corpus([tmp_path / "a.txt"], out, model="no/such-model")
    assert sorted(p.name for p in out.iterdir()) == [".lock", "notes.txt"]


def test_not_an_output_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an output folder"):
        _ = OutputFolder(tmp_path).manifest
    (tmp_path / MANIFEST_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a manifest this version"):
        _ = OutputFolder(tmp_path).manifest
