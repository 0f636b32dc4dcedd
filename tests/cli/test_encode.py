"""``lco-embed encode`` as a subprocess on real files: folders, tables, stdin, failures, refusals, precisions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import copy_media, read_rows, run_cli

TOL = 1e-5


@pytest.fixture(scope="module")
def every_modality(tmp_path_factory, media):
    """A folder of every modality, plus a corrupt image, an empty wav, a truncated mp4, a FIFO and a dangling link,
    and files not embedded."""
    corpus = tmp_path_factory.mktemp("every-modality") / "corpus"
    copy_media(
        media,
        corpus,
        {
            "images/gradient.png": "png",
            "images/rgba.png": "png_rgba",
            "images/photo.jpg": "jpg",
            "images/gray.png": "gray_png",
            "sounds/tone.wav": "wav",
            "sounds/stereo.wav": "wav_22k_stereo",
            "sounds/chirp.flac": "flac",
            "clips/clip.mp4": "mp4",
            "clips/short.mp4": "mp4_short",
            "broken/corrupt.png": "corrupt_png",
            "broken/empty.wav": "empty_wav",
        },
    )
    video = Path(media["mp4"]).read_bytes()
    (corpus / "broken" / "truncated.mp4").write_bytes(video[: len(video) * 6 // 10])
    (corpus / "notes").mkdir()
    (corpus / "notes" / "cat.txt").write_text("a cat on a mat\n", encoding="utf-8")
    (corpus / "notes" / "readme.docx").write_bytes(b"%PDF-1.4")
    os.mkfifo(corpus / "broken" / "pipe.txt")  # opening it would block for ever
    (corpus / "broken" / "gone.png").symlink_to(corpus / "nowhere.png")  # a dangling link
    return corpus


def _walk(corpus: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(corpus):
        dirs.sort()
        found += [Path(folder) / name for name in sorted(files) if not name.endswith(".docx")]
    return found


def test_a_folder_of_every_modality_with_broken_files(every_modality, tmp_path, tiny_omni, embedder):
    out = tmp_path / "out"
    result = run_cli("encode", every_modality, "--out", out, "--model", tiny_omni, "--shard-size", 4)
    broken = {
        "corrupt.png": "cannot decode the image",
        "empty.wav": "audio is empty",
        "truncated.mp4": "cannot decode the video",
        "pipe.txt": "is a FIFO (named pipe); only regular files are read",
        "gone.png": "is a broken symbolic link",
        "readme.docx": "no modality reads .docx files",
    }

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {Path(e["source"]).name: e["error"] for e in errors}.keys() == broken.keys()
    for error in errors:
        assert broken[Path(error["source"]).name] in error["error"]
        assert f"failed: {error['id']}" in result.stderr
    assert "Embedded 10 of 16 items, 6 failed" in result.stdout

    files = [p for p in _walk(every_modality) if p.name not in broken]
    rows = read_rows(out)
    assert [row["source"] for row in rows] == [str(p) for p in files]
    assert [row["id"] for row in rows] == [str(p) for p in files]  # the input as given + the relative path
    kinds = {".png": "image", ".jpg": "image", ".wav": "audio", ".flac": "audio", ".mp4": "video", ".txt": "text"}
    assert [row["modality"] for row in rows] == [kinds[p.suffix] for p in files]
    items = [{"text": p.read_text()} if p.suffix == ".txt" else {kinds[p.suffix]: str(p)} for p in files]
    expected = embedder.encode(items, show_progress_bar=False)
    np.testing.assert_allclose(np.stack([row["embedding"] for row in rows]), expected, atol=TOL, rtol=0)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"total": 16, "done": 16, "embedded": 10, "failed": 6}
    assert manifest["dimension"] == 64 and manifest["model"]["name"] == tiny_omni
    assert manifest["model"]["model_type"] == "qwen2_5_omni_thinker" and manifest["model"]["dtype"] == "float32"
    assert [(s["start"], s["end"]) for s in manifest["shards"]] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert sum(s["rows"] for s in manifest["shards"]) == 10
    assert manifest["ignored_files"] == {str(every_modality): {".docx": 1}}
    assert manifest["prompts"]["suffixes"]["image"] == "\nSummarize the above image in one word:"
    assert manifest["errors_bytes"] == (out / "errors.jsonl").stat().st_size
    assert pq.read_schema(out / "part-00000.parquet").field("embedding").type == pa.list_(pa.float32(), 64)


def test_tables_and_stdin_in_one_run(tmp_path, media, tiny_omni, embedder):
    data = tmp_path / "data"
    copy_media(media, data, {"img/cat.png": "png", "snd/meow.wav": "wav"})
    (data / "rows.jsonl").write_text(
        "\n".join(
            json.dumps(row)
            for row in (
                {"id": "j1", "text": "a cat on a mat", "lang": "en", "stars": 4},
                {"id": "j2", "text": "a caption", "image": "img/cat.png", "lang": "fr", "stars": 5},
                {"id": "j3", "audio": "snd/meow.wav", "source": "field recording"},
                {"id": "j4", "image": "img/cat.png", "max_pixels": 8 * 28 * 28},  # its own budget
                {"id": "j5", "image": "img/cat.png", "min_pixels": 10**9, "max_pixels": 10**9},  # past the ceiling
            )
        )
        + "\n"
    )
    (data / "rows.csv").write_text("id,text,image,note\nc1,first csv row,,x\nc2,,img/cat.png,y\n")
    pq.write_table(
        pa.table({"text": ["parquet text", None], "image": [None, Path(media["jpg"]).read_bytes()], "rank": [1, 2]}),
        data / "rows.parquet",
    )
    out = tmp_path / "out"
    args = ["encode", data / "rows.jsonl", data / "rows.csv", data / "rows.parquet", "-", "--out", out]
    run_cli(*args, "--model", tiny_omni, stdin="first line\nsecond line\n")
    rows = read_rows(out)
    cat, wav, jpg = str(data / "img/cat.png"), str(data / "snd/meow.wav"), Path(media["jpg"]).read_bytes()
    items = [
        {"text": "a cat on a mat"},
        {"text": "a caption", "image": cat},
        {"audio": wav},
        {"image": cat, "max_pixels": 8 * 28 * 28},
        {"text": "first csv row"},
        {"image": cat},
        {"text": "parquet text"},
        {"image": jpg},
        {"text": "first line"},
        {"text": "second line"},
    ]
    np.testing.assert_allclose(
        np.stack([r["embedding"] for r in rows]), embedder.encode(items, show_progress_bar=False), atol=TOL, rtol=0
    )
    parquet = str(data / "rows.parquet")
    ids = ["j1", "j2", "j3", "j4", "c1", "c2", f"{parquet}:1", f"{parquet}:2", "stdin:1", "stdin:2"]
    assert [r["id"] for r in rows] == ids
    modalities = ["text", "mixed", "audio", "image", "text", "image", "text", "image", "text", "text"]
    assert [r["modality"] for r in rows] == modalities
    assert [r["lang"] for r in rows] == ["en", "fr"] + [None] * 8
    assert [r["stars"] for r in rows][:3] == [4, 5, None]
    assert [r["input_source"] for r in rows][:3] == [None, None, "field recording"]  # "source" is an output column
    assert [r["note"] for r in rows] == [None] * 4 + ["x", "y"] + [None] * 4
    assert [r["rank"] for r in rows] == [None] * 6 + [1, 2, None, None]
    assert [r["max_pixels"] for r in rows][3] == 8 * 28 * 28  # kept as a column too
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["j5"] and "is above the 1,003,520 pixels per image" in errors[0]["error"]
    assert pq.read_schema(out / "part-00000.parquet").field("stars").type == pa.int64()


@pytest.fixture
def finished(tmp_path, tiny_omni):
    """A finished run over a small JSONL table."""
    table = tmp_path / "texts.jsonl"
    table.write_text("".join(json.dumps({"id": f"t{i}", "text": f"sentence number {i}"}) + "\n" for i in range(6)))
    out = tmp_path / "out"
    run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4, "-q")
    return table, out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".lock"}


def test_a_finished_folder_is_left_alone_and_other_settings_are_refused(finished, tiny_omni, tiny_vl):
    table, out = finished
    before = _snapshot(out)
    result = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4)
    assert "Nothing to do" in result.stdout and "6 items: 0 new, 0 changed, 6 unchanged, 0 deleted" in result.stdout
    assert _snapshot(out) == before

    refused = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4, "--precision", "int8",
                      check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "options.precision: 'float32' in the folder, 'int8' now" in refused.stderr
    assert "--overwrite" in refused.stderr
    refused = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4, "--quantization", "int8",
                      check=False)  # fmt: skip
    assert refused.returncode == 1 and "model.quantization:" in refused.stderr  # int8 weights: other embeddings
    refused = run_cli("encode", table, "--out", out, "--model", tiny_vl, "--shard-size", 4, check=False)
    assert refused.returncode == 1 and "model.name:" in refused.stderr
    for preset in ("card", "mteb"):  # a preset changes the embeddings: refused like any changed setting
        refused = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4, "--preset", preset,
                          check=False)  # fmt: skip
        assert refused.returncode == 1 and f"settings.preset: 'default' in the folder, {preset!r} now" in refused.stderr
    same = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4, "--preset", "default")
    assert "Nothing to do" in same.stdout
    assert _snapshot(out) == before
    with table.open("a") as f:  # a changed input set: updated in place, only the new row embedded
        f.write(json.dumps({"text": "one more"}) + "\n")
    planned = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4, "--dry-run")
    assert "7 items: 1 new, 0 changed, 6 unchanged, 0 deleted; would embed 1, copy 0" in planned.stdout
    assert _snapshot(out) == before
    updated = run_cli("encode", table, "--out", out, "--model", tiny_omni, "--shard-size", 4)
    assert "7 items: 1 new, 0 changed, 6 unchanged, 0 deleted; embedded 1 in" in updated.stdout
    assert len(read_rows(out)) == 7


def test_overwrite_with_another_precision(finished, tiny_omni, embedder):
    table, out = finished
    floats = embedder.encode([f"sentence number {i}" for i in range(6)], show_progress_bar=False)
    for precision, arrow in (("int8", pa.list_(pa.int8(), 64)), ("binary", pa.list_(pa.uint8(), 8))):
        run_cli("encode", table, "--out", out, "--model", tiny_omni, "--precision", precision, "--overwrite", "-q")
        assert pq.read_schema(out / "part-00000.parquet").field("embedding").type == arrow
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["options"]["precision"] == precision and len(manifest["shards"]) == 1
        assert (manifest["int8_ranges"] is not None) == (precision == "int8")
        stored = np.stack([row["embedding"] for row in read_rows(out)])
        if precision == "binary":
            np.testing.assert_array_equal(stored, np.packbits(floats > 0, axis=-1))
        else:
            low, high = (np.asarray(r) for r in manifest["int8_ranges"])
            np.testing.assert_allclose(low, floats.min(0), atol=1e-6)
            np.testing.assert_allclose(high, floats.max(0), atol=1e-6)


def test_bad_inputs_fail_before_anything_is_written(tmp_path, tiny_omni):
    out = tmp_path / "out"
    result = run_cli("encode", tmp_path / "missing", "--out", out, "--model", tiny_omni, check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr and not out.exists()
    (tmp_path / "x.csv").write_text("name\nvalue\n")
    result = run_cli("encode", tmp_path / "x.csv", "--out", out, "--model", tiny_omni, check=False)
    assert result.returncode == 1 and "no column named text, image, audio, video or pdf" in result.stderr
    result = run_cli("encode", "--out", out, check=False)
    assert result.returncode == 2 and "Missing argument 'INPUT...'" in result.stderr
    result = run_cli("encode", tmp_path / "x.csv", "--out", out, "--segment", "audio=30s,audio=10s", check=False)
    assert result.returncode == 2 and "names audio twice ('audio=30s' and 'audio=10s')" in result.stderr
    table = tmp_path / "dup.jsonl"
    table.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n\n{"id": "a", "text": "z"}\n')
    result = run_cli("encode", table, "--out", out, "--model", tiny_omni, check=False)
    assert result.returncode == 1 and "1 record(s) repeat an id another record already has" in result.stderr
    assert f"'a': {table}:1, {table}:4" in result.stderr and "--allow-duplicate-ids" in result.stderr
    assert not out.exists()  # refused before the model loads and before the folder is made
