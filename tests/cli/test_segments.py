"""``lco-embed encode --segment`` and ``search`` on segments, as subprocesses: one row per segment with its place,
exactly once across a ``kill -9``; hits with their time ranges, and one per file with ``--group-by source``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lco_embedding.testing import write_clip_with_sound, write_wav
from tests.cli.conftest import committed_shards, kill_at, read_rows, run_cli

TOL = 1e-5
RATE = 16000
SPEC = "audio=30s,video=30s,text=60"


@pytest.fixture(scope="module")
def long_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("segments")
    media = root / "media"
    media.mkdir()
    t = np.arange(65 * RATE) / RATE
    write_wav(media / "a_talk.wav", 0.3 * np.sin(2 * np.pi * (200 + 4 * t) * t), RATE)
    write_clip_with_sound(media / "b_walk.mkv", seconds=35, fps=2, width=32, height=32, video_codec="mjpeg")
    sentences = [f"Part {i} of the story: the {('cat', 'dog', 'fox')[i % 3]} went {i} steps." for i in range(20)]
    (media / "c_story.txt").write_text(" ".join(sentences))
    return root


def test_segments_resume_exactly_once_and_search_prints_time_ranges(long_folder, tiny_omni, embedder):
    from lco_embedding import SegmentSpec
    from lco_embedding.corpus.job import encode_corpus
    from lco_embedding.corpus.search import search_folder

    args = ["encode", long_folder / "media", "--model", tiny_omni, "--segment", SPEC, "--shard-size", 1, "-q"]
    whole = long_folder / "whole"  # the uninterrupted run, in this process (the subprocesses below resume one)
    encode_corpus([long_folder / "media"], whole, model=embedder, segment=SegmentSpec.parse(SPEC), shard_size=1)
    rows = read_rows(whole)
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["id"].rsplit("/", 1)[-1], []).append(row)
    assert [(r["segment"], r["start"], r["end"]) for r in by_file["a_talk.wav"]] == [
        (0, 0.0, 30.0), (1, 30.0, 60.0), (2, 60.0, 65.0)
    ]  # fmt: skip
    assert [(r["start"], r["end"]) for r in by_file["b_walk.mkv"]] == [(0.0, 30.0), (30.0, 35.0)]
    text = (long_folder / "media" / "c_story.txt").read_text()
    story = by_file["c_story.txt"]
    assert len(story) > 2 and story[-1]["end"] == len(text) and [r["segment"] for r in story] == list(range(len(story)))
    manifest = json.loads((whole / "manifest.json").read_text())
    assert manifest["options"]["segment"]["text"] == 60 and manifest["counts"]["embedded"] == len(rows)
    for name, file_rows in by_file.items():
        path = long_folder / "media" / name
        item = path.read_text() if name.endswith(".txt") else str(path)
        expected = embedder.encode_segments(item, SegmentSpec.parse(SPEC))
        np.testing.assert_allclose(np.stack([r["embedding"] for r in file_rows]), expected.embeddings, atol=TOL, rtol=0)

    out = long_folder / "interrupted"
    # killed after the video's segments were embedded, before they were committed: the audio's three rows (its
    # shard, committed together) are kept, none of the video's
    kill_at([*args, "--out", out], "record:2")
    assert committed_shards(out) == 1 and len(read_rows(out)) == 3
    resumed = run_cli(*args, "--out", out)
    assert "Resumed at item 1" in resumed.stdout and "Embedded 3 of 3 items as" in resumed.stdout
    got = read_rows(out)
    assert [{k: v for k, v in r.items() if k != "embedding"} for r in got] == [
        {k: v for k, v in r.items() if k != "embedding"} for r in rows
    ]
    np.testing.assert_allclose(np.stack([r["embedding"] for r in got]), np.stack([r["embedding"] for r in rows]),
                               atol=TOL, rtol=0)  # fmt: skip

    table = run_cli("search", out, "the dog", "--group-by", "source", "-k", 10).stdout
    assert "where" in table.splitlines()[0] and "chars " in table
    assert all(name in table for name in ("a_talk.wav", "b_walk.mkv", "c_story.txt"))
    assert re.search(r"\b\d:\d\d-\d:\d\d\b", table)  # the audio's and the video's best segments, timed
    query = embedder.encode("the dog")
    grouped = search_folder(out, query, k=10, group_by="source")[0]
    best: dict[str, float] = {}  # every row: the best score of each file
    for hit in search_folder(out, query, k=len(rows))[0]:
        best.setdefault(hit.source, hit.score)
    assert {hit.source: hit.score for hit in grouped} == pytest.approx(best, abs=1e-6)
    assert [hit.span for hit in grouped if hit.modality == "audio"][0] in {"0:00-0:30", "0:30-1:00", "1:00-1:05"}
