"""Ray Data (one local Ray per session, CPU, tiny checkpoint): embed_dataset, a killed actor, lco-embed --ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import psutil
import pytest

from lco_embedding.corpus import read_embeddings
from lco_embedding.corpus.job import encode_corpus
from lco_embedding.distributed import embed_dataset
from tests.cli.conftest import committed_shards, copy_media, kill_at, read_rows, run_cli
from tests.inputs.test_documents import image_pdf, with_broken_page

TOL = 1e-5


def _by_id(rows: list[dict]) -> dict:
    return {row["id"]: row for row in rows}


def test_embed_dataset_equals_encode_for_every_modality(ray_address, tmp_path, media, tiny_omni, embedder):
    import ray.data

    shutil.copyfile(media["png"], tmp_path / "relative.png")
    rows = [
        {"id": "text", "text": "a cat on a mat"},
        {"id": "image", "image": media["png"]},
        {"id": "audio", "audio": media["wav"]},
        {"id": "video", "video": media["mp4"]},
        {"id": "mixed", "text": "a caption", "image": media["jpg"]},
        {"id": "relative", "image": "relative.png"},
        {"id": "missing", "image": "/no/such/file.png"},
        {"id": "empty-audio", "audio": media["empty_wav"]},
        {"id": "nothing"},
        {"id": "text-2", "text": "the quick brown fox"},
    ]
    columns = ("id", "text", "image", "audio", "video")
    ds = ray.data.from_items([{c: row.get(c) for c in columns} for row in rows], override_num_blocks=4)
    out = _by_id(embed_dataset(ds, tiny_omni, batch_size=3, concurrency=2, base_dir=tmp_path).take_all())
    assert sorted(out) == sorted(row["id"] for row in rows)  # every row once, ids kept
    good = ["text", "image", "audio", "video", "mixed", "relative", "text-2"]
    items = [
        "a cat on a mat",
        {"image": media["png"]},
        {"audio": media["wav"]},
        {"video": media["mp4"]},
        {"text": "a caption", "image": media["jpg"]},
        {"image": str(tmp_path / "relative.png")},
        "the quick brown fox",
    ]
    expected = embedder.encode(items, show_progress_bar=False)
    got = np.stack([np.asarray(out[i]["embedding"], dtype=np.float32) for i in good])
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    assert all(out[i]["error"] is None for i in good)
    for row_id, reason in (("missing", "file not found"), ("empty-audio", "audio is empty"), ("nothing", "no text")):
        assert out[row_id]["embedding"] is None and reason in out[row_id]["error"]


def test_bytes_columns_mapped_by_name(ray_address, media, tiny_omni, embedder):
    import ray.data

    png, jpg = Path(media["png"]).read_bytes(), Path(media["jpg"]).read_bytes()
    ds = ray.data.from_items([{"key": 1, "picture": png, "caption": None}, {"key": 2, "picture": jpg, "caption": "x"}])
    out = embed_dataset(ds, tiny_omni, columns={"image": "picture", "text": "caption"}, output_column="vector")
    rows = sorted(out.take_all(), key=lambda row: row["key"])
    expected = embedder.encode([{"image": png}, {"text": "x", "image": jpg}], show_progress_bar=False)
    np.testing.assert_allclose(np.stack([r["vector"] for r in rows]), expected, atol=TOL, rtol=0)


def test_bad_arguments_are_refused_before_anything_runs(ray_address, tiny_omni, embedder):
    import ray.data

    ds = ray.data.from_items([{"text": "a", "error": "taken"}])
    with pytest.raises(ValueError, match="already has columns"):
        embed_dataset(ds, tiny_omni)
    with pytest.raises(ValueError, match="no such columns"):
        embed_dataset(ds, tiny_omni, columns={"image": "picture"}, error_column="why")
    with pytest.raises(TypeError, match="each Ray actor loads it"):
        embed_dataset(ds, embedder, error_column="why")


def _actor_pids() -> set[int]:
    found = set()
    for process in psutil.process_iter(["cmdline"]):
        if any("MapBatches(EmbedBatch)" in part for part in process.info["cmdline"] or []):
            found.add(process.pid)
    return found


def test_a_killed_actor_loses_and_duplicates_nothing(ray_address, media, tiny_omni, embedder):
    import ray.data

    names = [media["png"], media["jpg"], media["wav"], media["flac"]]
    rows = [{"id": i, "image": None, "audio": None} for i in range(48)]
    for row in rows:
        path = names[row["id"] % 4]
        row["image" if path.endswith((".png", ".jpg")) else "audio"] = path
    ds = ray.data.from_items(rows, override_num_blocks=24)
    out = embed_dataset(ds, tiny_omni, batch_size=2, concurrency=2)
    collected, seen, killed = [], set(), None
    for batch in out.iter_batches(batch_format="pandas", batch_size=None):
        collected += batch.to_dict("records")
        seen |= _actor_pids()
        if killed is None and seen:
            killed = min(seen)
            os.kill(killed, signal.SIGKILL)  # mid-job: most blocks are still to come
    seen |= _actor_pids()
    assert killed is not None
    assert len(seen - {killed}) >= 2, "Ray started a replacement actor after the kill"
    ids = [row["id"] for row in collected]
    assert sorted(ids) == list(range(48))  # every row exactly once
    by_id = _by_id(collected)
    items = [{"image": r["image"]} if r["image"] else {"audio": r["audio"]} for r in rows]
    expected = embedder.encode(items, show_progress_bar=False)
    np.testing.assert_allclose(np.stack([by_id[i]["embedding"] for i in range(48)]), expected, atol=TOL, rtol=0)


def test_lco_embed_encode_on_ray_writes_the_same_folder_and_resumes(ray_address, tmp_path, media, tiny_omni):
    data = tmp_path / "data"
    names = {f"m{i:02d}.png" if i % 2 else f"m{i:02d}.wav": "png" if i % 2 else "wav" for i in range(12)}
    copy_media(media, data / "media", {**names, "zz.png": "corrupt_png"})
    lines = [json.dumps({"id": f"t{i}", "text": f"sentence {i}", "n": i}) for i in range(5)] + ["{broken"]
    (data / "texts.jsonl").write_text("\n".join(lines) + "\n")
    common = ["encode", data / "media", data / "texts.jsonl", "--model", tiny_omni, "--shard-size", 4, "-q"]
    # The same job without Ray, in this process (the CLI's own local path is tested in tests/cli).
    encode_corpus([data / "media", data / "texts.jsonl"], tmp_path / "local", model=tiny_omni, shard_size=4)
    on_ray = [*common, "--out", tmp_path / "ray", "--ray", ray_address, "--ray-workers", 1]
    # kill -9 the driver once its first shard is committed; the re-run resumes at the next shard
    kill_at(on_ray, "commit:1")
    assert committed_shards(tmp_path / "ray") == 1
    done = json.loads((tmp_path / "ray" / "manifest.json").read_text())["counts"]["done"]
    assert done == 4
    result = run_cli(*on_ray)
    assert f"Resumed at item {done}" in result.stdout and "Embedded 17 of 19 items, 2 failed" in result.stdout

    local, ray_rows = read_rows(tmp_path / "local"), read_rows(tmp_path / "ray")
    strip = [{k: v for k, v in row.items() if k != "embedding"} for row in local]
    assert [{k: v for k, v in row.items() if k != "embedding"} for row in ray_rows] == strip
    np.testing.assert_allclose(
        np.stack([r["embedding"] for r in ray_rows]), np.stack([r["embedding"] for r in local]), atol=TOL, rtol=0
    )
    assert (tmp_path / "ray" / "errors.jsonl").read_text() == (tmp_path / "local" / "errors.jsonl").read_text()
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("local", "ray")]
    for manifest in manifests:
        for key in ("created", "updated", "seconds"):
            manifest.pop(key)
    assert manifests[0] == manifests[1]

    # An update on Ray: only the new and changed items go to the actors; it equals the same update done here.
    copy_media(media, data / "media", {"new.png": "gray_png"})
    lines[3] = json.dumps({"id": "t3", "text": "sentence three, rewritten", "n": 3})
    (data / "texts.jsonl").write_text("\n".join(lines) + "\n")
    updated = run_cli(*on_ray)
    assert "20 items: 1 new, 1 changed, 18 unchanged, 0 deleted; embedded 2 in" in updated.stdout
    encode_corpus([data / "media", data / "texts.jsonl"], tmp_path / "local", model=tiny_omni, shard_size=4)
    local, ray_rows = (read_embeddings(tmp_path / name) for name in ("local", "ray"))
    order = [sorted(range(t.num_rows), key=t.column("id").to_pylist().__getitem__) for t in (local, ray_rows)]
    local, ray_rows = local.take(order[0]), ray_rows.take(order[1])
    assert ray_rows.drop_columns(["embedding"]).to_pylist() == local.drop_columns(["embedding"]).to_pylist()
    np.testing.assert_allclose(
        np.stack(ray_rows.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(local.column("embedding").to_numpy(zero_copy_only=False)),
        atol=TOL,
        rtol=0,
    )


def test_without_ray_the_error_names_the_extra(monkeypatch, tiny_omni):
    import subprocess
    import sys

    code = "import sys, lco_embedding.distributed; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ImportError, match=r"pip install 'lco-embedding\[ray\]'"):
        embed_dataset(object(), tiny_omni)


def test_embed_dataset_with_segments_gives_a_row_per_segment(ray_address, tmp_path, media, tiny_omni, embedder):
    import ray.data

    from lco_embedding import SegmentSpec
    from lco_embedding.testing import write_wav

    rate = 16000
    t = np.arange(25 * rate) / rate
    write_wav(tmp_path / "long.wav", 0.3 * np.sin(2 * np.pi * (180 + 6 * t) * t), rate)
    text = " ".join(f"Line {i} speaks of the {('sun', 'moon')[i % 2]} tonight." for i in range(10))
    spec = SegmentSpec(audio=10.0, video=None, text=30, text_overlap=5)
    rows = [
        {"id": "audio", "audio": str(tmp_path / "long.wav"), "text": None, "image": None},
        {"id": "text", "audio": None, "text": text, "image": None},
        {"id": "image", "audio": None, "text": None, "image": media["png"]},
        {"id": "missing", "audio": "/no/such/file.wav", "text": None, "image": None},
    ]
    ds = ray.data.from_items(rows, override_num_blocks=2)
    out = embed_dataset(ds, tiny_omni, batch_size=2, segment=spec).take_all()
    by_id: dict[str, list[dict]] = {}
    for row in out:
        by_id.setdefault(row["id"], []).append(row)
    for row_id, item in (("audio", str(tmp_path / "long.wav")), ("text", text), ("image", {"image": media["png"]})):
        got = sorted(by_id[row_id], key=lambda row: row["segment"])
        expected = embedder.encode_segments(item, spec)
        np.testing.assert_allclose(np.stack([r["embedding"] for r in got]), expected.embeddings, atol=TOL, rtol=0)
        starts = [np.nan if r["start"] is None else r["start"] for r in got]
        np.testing.assert_array_equal(starts, expected.start)
    assert [(r["start"], r["end"]) for r in sorted(by_id["audio"], key=lambda r: r["segment"])] == [
        (0.0, 10.0), (10.0, 20.0), (20.0, 25.0)
    ]  # fmt: skip
    assert len(by_id["missing"]) == 1 and by_id["missing"][0]["embedding"] is None
    assert "file not found" in by_id["missing"][0]["error"] and by_id["missing"][0]["segment"] is None


def test_a_segmented_corpus_on_ray_equals_encode_segments(ray_address, tmp_path, media, tiny_omni, embedder):
    from lco_embedding import SegmentSpec
    from lco_embedding.distributed import RayOptions, RayRunner
    from lco_embedding.testing import write_wav

    data = tmp_path / "data"
    copy_media(media, data, {"b.png": "png", "c.png": "corrupt_png"})
    t = np.arange(25 * 16000) / 16000
    write_wav(data / "a.wav", 0.3 * np.sin(2 * np.pi * (180 + 6 * t) * t), 16000)
    story = " ".join(f"Line {i} speaks of the sea." for i in range(12))
    (data / "d.txt").write_text(story)
    image_pdf(tmp_path / "e.pdf", [(200, 300), (300, 200), (250, 250)])
    (data / "e.pdf").write_bytes(open(with_broken_page(tmp_path / "e.pdf", 2), "rb").read())  # page 2 fails
    spec = SegmentSpec(audio=10.0, text=30, text_overlap=5)
    options = RayOptions(address=ray_address, workers=1)
    summary = encode_corpus(
        [data], tmp_path / "ray", model=tiny_omni, shard_size=2, segment=spec, runner=RayRunner(options)
    )
    rows = read_rows(tmp_path / "ray")
    errors = [json.loads(line) for line in (tmp_path / "ray" / "errors.jsonl").read_text().splitlines()]
    assert (summary.failed, summary.partial) == (2, 1) and errors[0]["id"].endswith("c.png")
    assert errors[1]["pages"] == [2] and errors[1]["error"].startswith("page 2 cannot be loaded")
    pages = embedder.encode_segments({"pdf": str(data / "e.pdf")}, on_error="skip")
    assert pages.start.tolist() == [1.0, 3.0]  # the document's other pages, as encode_segments gives them
    items = {"a.wav": str(data / "a.wav"), "b.png": {"image": str(data / "b.png")}, "d.txt": story}
    for name, item in items.items():
        got = [row for row in rows if row["id"].endswith(name)]
        expected = embedder.encode_segments(item, spec)
        assert [row["segment"] for row in got] == list(range(len(expected)))
        assert [row["start"] for row in got] == [None if np.isnan(v) else v for v in expected.start]
        np.testing.assert_allclose(np.stack([r["embedding"] for r in got]), expected.embeddings, atol=TOL, rtol=0)
    assert [(r["start"], r["end"]) for r in rows if r["id"].endswith("a.wav")] == [(0, 10), (10, 20), (20, 25)]
    got = [row for row in rows if row["id"].endswith("e.pdf")]
    assert [row["start"] for row in got] == [1.0, 3.0]
    np.testing.assert_allclose(np.stack([r["embedding"] for r in got]), pages.embeddings, atol=TOL, rtol=0)
