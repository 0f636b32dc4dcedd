"""Updates in place: a library of files and a table, encoded into a folder, LanceDB and Milvus, then changed (files
added, changed, deleted, renamed and duplicated, table rows edited and added). The re-run embeds exactly the
changed content (counted by the items the runner's model was given) and equals a from-scratch run on the new
state; a dry run changes nothing; a no-change run loads no model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lco_embedding.corpus import encode_corpus, open_store, read_embeddings
from lco_embedding.corpus.runners import LocalRunner
from lco_embedding.testing import synthetic_image, write_wav

TOL = 1e-5
KINDS = ("parquet", "lancedb", "milvus")


def target(kind: str, root, name: str) -> str:
    return {
        "parquet": str(root / name),
        "lancedb": f"lancedb://{root}/db/{name}",
        "milvus": f"milvus://{root}/{name}.db/corpus",
    }[kind]


class CountingRunner(LocalRunner):
    """The local runner, counting the items its model is given."""

    def __init__(self) -> None:
        self.embedded: list[str] = []
        self.started = 0

    def start(self, spec):
        self.started += 1
        job = super().start(spec)
        outcomes = job.outcomes

        def counted(records, **encode_kwargs):
            def fed():
                for record in records:
                    if record.error is None:
                        self.embedded.append(record.id)
                    yield record

            return outcomes(fed(), **encode_kwargs)

        job.outcomes = counted
        return job


def write_library(root, media) -> dict:
    """A folder of images, sounds, a clip and texts, and a JSONL table with extra columns."""
    from PIL import Image

    rng = np.random.default_rng(3)
    files = root / "files"
    files.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(synthetic_image(40 + 8 * i, 56, rng)).save(files / f"image{i}.png")
    t = np.arange(8000) / 16000
    for i in range(2):
        write_wav(files / f"sound{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t), 16000)
    shutil.copy(media["mp4_short"], files / "clip.mp4")
    (files / "note0.txt").write_text("a note about rivers")
    (files / "note1.txt").write_text("a note about mountains")
    rows = [
        {"id": f"r{i}", "text": f"row {i} about " + "cats " * (i % 3), "year": 2000 + i, "lang": ("en", "fr")[i % 2]}
        for i in range(6)
    ]
    (root / "table.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"files": files, "table": root / "table.jsonl", "rows": rows}


def change_library(library) -> None:
    """10 kinds of change: 1 file added, 1 changed, 1 deleted, 1 renamed, 1 duplicated; 2 rows edited (text; an
    extra column only), 1 row added."""
    from PIL import Image

    files = library["files"]
    Image.fromarray(synthetic_image(48, 48, np.random.default_rng(9))).save(files / "added.png")
    Image.fromarray(synthetic_image(40, 56, np.random.default_rng(10))).save(files / "image0.png")  # changed
    (files / "sound1.wav").unlink()  # deleted
    (files / "note1.txt").rename(files / "renamed.txt")  # moved
    shutil.copy(files / "image2.png", files / "copy-of-image2.png")  # duplicate
    rows = [dict(row) for row in library["rows"]]
    rows[1]["text"] = "row 1, rewritten"  # content changed
    rows[2]["year"] = 1999  # only an extra column changed
    rows.append({"id": "r6", "text": "a row added", "year": 2006, "lang": "en"})
    library["table"].write_text("".join(json.dumps(row) + "\n" for row in rows))


def _sorted(table):
    keys = list(zip(table.column("id").to_pylist(), range(table.num_rows), strict=True))
    order = [i for _, i in sorted(keys)]
    return table.take(order)


def assert_same_rows(got, expected) -> None:
    got, expected = _sorted(got), _sorted(expected)
    drop = [c for c in ("row", "embedding") if c in got.column_names]
    assert (
        got.drop_columns(drop).to_pylist()
        == expected.drop_columns([c for c in ("row", "embedding") if c in expected.column_names]).to_pylist()
    )
    vectors = [np.stack(t.column("embedding").to_numpy(zero_copy_only=False)) for t in (got, expected)]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_an_update_embeds_only_what_changed_and_equals_a_fresh_run(tmp_path, media, embedder, kind):
    library = write_library(tmp_path / "library", media)
    inputs = [library["files"], library["table"]]
    out = target(kind, tmp_path, "corpus")
    first = CountingRunner()
    encode_corpus(inputs, out, model=embedder, shard_size=4, runner=first, show_progress_bar=False)
    assert len(first.embedded) == 14
    before = read_embeddings(out)

    change_library(library)
    planned = encode_corpus(inputs, out, model=embedder, shard_size=4, dry_run=True, show_progress_bar=False)
    assert planned.dry_run and planned.update == {
        "new": 2, "changed": 3, "unchanged": 9, "moved": 1, "duplicate": 1, "deleted": 1, "embed": 4, "copy": 3,
    }  # fmt: skip
    assert_same_rows(read_embeddings(out), before)  # the dry run changed nothing

    update = CountingRunner()
    summary = encode_corpus(inputs, out, model=embedder, shard_size=4, runner=update, show_progress_bar=False)
    assert summary.update == planned.update
    assert sorted(update.embedded) == sorted(
        [f"{library['files']}/added.png", f"{library['files']}/image0.png", "r1", "r6"]
    )  # exactly the new and changed content went to the model
    fresh = target(kind, tmp_path, "fresh")
    encode_corpus(inputs, fresh, model=embedder, shard_size=4, show_progress_bar=False)
    assert_same_rows(read_embeddings(out), read_embeddings(fresh))
    store = open_store(out)
    try:
        assert store.manifest["counts"] == {"total": 16, "done": 16, "embedded": 16, "failed": 0}
    finally:
        store.close()

    again = CountingRunner()
    summary = encode_corpus(inputs, out, model=embedder, shard_size=4, runner=again, show_progress_bar=False)
    assert summary.already_complete and summary.update["unchanged"] == 16 and again.started == 0  # no model


def test_keep_deleted_keeps_the_rows_of_items_gone(tmp_path, media, embedder):
    library = write_library(tmp_path / "library", media)
    out = str(tmp_path / "corpus")
    encode_corpus([library["files"]], out, model=embedder, show_progress_bar=False)
    (library["files"] / "sound0.wav").unlink()
    summary = encode_corpus([library["files"]], out, model=embedder, keep_deleted=True, show_progress_bar=False)
    assert summary.update["deleted"] == 0 and summary.already_complete
    assert any(i.endswith("sound0.wav") for i in read_embeddings(out).column("id").to_pylist())
    summary = encode_corpus([library["files"]], out, model=embedder, show_progress_bar=False)
    assert summary.update["deleted"] == 1
    assert not any(i.endswith("sound0.wav") for i in read_embeddings(out).column("id").to_pylist())


def test_a_changed_recording_re_embeds_its_segments(tmp_path, embedder):
    from lco_embedding import SegmentSpec

    folder = tmp_path / "talks"
    folder.mkdir()
    t = np.arange(25 * 16000) / 16000
    write_wav(folder / "a.wav", 0.3 * np.sin(2 * np.pi * (220 + 6 * t) * t), 16000)
    write_wav(folder / "b.wav", 0.3 * np.sin(2 * np.pi * (330 + 3 * t) * t), 16000)
    spec = SegmentSpec(audio=10)
    out = str(tmp_path / "corpus")
    encode_corpus([folder], out, model=embedder, segment=spec, show_progress_bar=False)
    write_wav(folder / "b.wav", 0.3 * np.sin(2 * np.pi * (500 + 2 * t[: 16000 * 15]) * t[: 16000 * 15]), 16000)
    (folder / "a.wav").rename(folder / "c.wav")  # moved: its three segments copied
    runner = CountingRunner()
    summary = encode_corpus([folder], out, model=embedder, segment=spec, runner=runner, show_progress_bar=False)
    assert summary.update["changed"] == 1 and summary.update["moved"] == 1 and runner.embedded == [f"{folder}/b.wav"]
    fresh = str(tmp_path / "fresh")
    encode_corpus([folder], fresh, model=embedder, segment=spec, show_progress_bar=False)
    got, expected = read_embeddings(out), read_embeddings(fresh)

    def in_order(table):
        places = zip(table.column("id").to_pylist(), table.column("segment").to_pylist(), strict=True)
        return table.take([i for *_, i in sorted((*place, i) for i, place in enumerate(places))])

    got, expected = in_order(got), in_order(expected)
    assert got.drop_columns(["embedding"]).to_pylist() == expected.drop_columns(["embedding"]).to_pylist()
    np.testing.assert_allclose(
        np.stack(got.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(expected.column("embedding").to_numpy(zero_copy_only=False)),
        atol=TOL,
        rtol=0,
    )
    assert got.column("segment").to_pylist().count(2) == 1  # a: 3 windows; b now 2


class Killed(Exception):
    """Raised by the events hook to stop a job where a kill would."""


def killer(point: str):
    event, _, number = point.partition(":")

    def events(name: str, count: int) -> None:
        if name == event and count == int(number or 0):
            raise Killed(point)

    return events


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupted_update_is_never_seen_half_applied_and_resumes_to_the_fresh_run(tmp_path, media, embedder, kind):
    from lco_embedding.corpus import search_folder

    library = write_library(tmp_path / "library", media)
    inputs = [library["files"], library["table"]]
    out = target(kind, tmp_path, "corpus")
    encode_corpus(inputs, out, model=embedder, shard_size=2, show_progress_bar=False)
    before = read_embeddings(out)
    query = embedder.encode("a note about rivers")
    hits_before = [(h.id, round(h.score, 5)) for h in search_folder(out, query, k=20)[0]]
    change_library(library)
    # While fingerprinting, mid-embedding (after a staged shard's commit), between the last staged write and the
    # update's commit: a reader sees the store as it was, whole.
    for point in ("fingerprint:2", "record:3", "commit:1", "update"):
        with pytest.raises(Killed):
            encode_corpus(inputs, out, model=embedder, shard_size=2, events=killer(point), show_progress_bar=False)
        assert_same_rows(read_embeddings(out), before)
        assert [(h.id, round(h.score, 5)) for h in search_folder(out, query, k=20)[0]] == hits_before, point
    runner = CountingRunner()
    summary = encode_corpus(inputs, out, model=embedder, shard_size=2, runner=runner, show_progress_bar=False)
    assert summary.update["embed"] == 4 and len(runner.embedded) <= 4  # what was staged before is not embedded again
    fresh = target(kind, tmp_path, "fresh")
    encode_corpus(inputs, fresh, model=embedder, shard_size=2, show_progress_bar=False)
    assert_same_rows(read_embeddings(out), read_embeddings(fresh))
    store, reference = open_store(out), open_store(fresh)
    try:
        assert sorted(e["id"] for e in store.read_errors()) == sorted(e["id"] for e in reference.read_errors())
    finally:
        store.close()
        reference.close()


def test_watch_applies_each_change_once_and_a_slow_file_once_complete(tmp_path, media, embedder):
    """The watch driven by batches of changes the test makes (no timing): files added, changed and removed, and one
    file written in three chunks, each chunk a batch; the store converges after the last change, each change is
    applied once, and the slow file is embedded once, complete."""
    from lco_embedding.corpus.watch import watch_corpus

    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "a.txt").write_text("the first note")
    out = str(tmp_path / "corpus")
    runner = CountingRunner()
    summaries = []
    slow = folder / "slow.txt"
    chunks = ["a note written ", "slowly, in three ", "chunks"]

    def changes():
        (folder / "b.txt").write_text("a second note")
        yield {("added", str(folder / "b.txt"))}
        yield set()  # quiet: b.txt settled -> one update
        (folder / "a.txt").write_text("the first note, edited")
        (folder / "b.txt").unlink()
        yield {("modified", str(folder / "a.txt")), ("deleted", str(folder / "b.txt"))}
        yield set()  # -> one update
        for chunk in chunks:  # a writer still at work: each batch sees the file grow, no update yet
            with slow.open("a") as f:
                f.write(chunk)
            yield {("modified", str(slow))}
        yield set()  # it stopped growing -> one update, with the whole file

    watch_corpus([folder], out, changes=changes(), on_update=summaries.append, model=embedder, runner=runner,
                 show_progress_bar=False)  # fmt: skip
    kinds = [(s.update or {}) for s in summaries]
    assert len(summaries) == 4, kinds  # the first run and one update per settled change
    assert [(k["new"], k["changed"], k["deleted"]) for k in kinds[1:]] == [(1, 0, 0), (0, 1, 1), (1, 0, 0)]
    assert sorted(runner.embedded) == sorted(
        [f"{folder}/a.txt", f"{folder}/b.txt", f"{folder}/a.txt", f"{folder}/slow.txt"]
    )
    table = read_embeddings(out)
    assert sorted(table.column("id").to_pylist()) == [f"{folder}/a.txt", f"{folder}/slow.txt"]
    fresh = str(tmp_path / "fresh")
    encode_corpus([folder], fresh, model=embedder, show_progress_bar=False)
    assert_same_rows(table, read_embeddings(fresh))  # the slow file embedded complete: as a fresh run reads it


def test_files_no_modality_reads_are_reported_not_dropped(tmp_path, embedder, caplog):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "report.xyz").write_bytes(b"no modality reads this")
    (folder / "note.txt").write_text("a note")
    with caplog.at_level("WARNING", logger="lco_embedding.corpus.job"):
        summary = encode_corpus([folder], tmp_path / "out", model=embedder, show_progress_bar=False)
    assert summary.not_taken == [f"{folder}/report.xyz"] and (summary.done, summary.failed) == (2, 1)
    assert "Not taken: 1 file(s) of a type no modality reads (.xyz)" in caplog.text and "report.xyz" in caplog.text
    (failure,) = open_store(tmp_path / "out").read_errors()  # listed in the errors file, with the reason
    assert failure["source"] == f"{folder}/report.xyz" and "no modality reads .xyz files" in failure["error"]


def write_large_library(root) -> dict:
    """1,000 items: 900 table rows with extra columns, 60 images, 20 sounds, a 25-s recording (cut into segments),
    10 clips and 9 text files."""
    from PIL import Image

    from lco_embedding.testing import write_mp4

    rng = np.random.default_rng(11)
    files = root / "files"
    files.mkdir(parents=True)
    for i in range(60):
        Image.fromarray(synthetic_image(28 + 4 * (i % 5), 40, rng)).save(files / f"image{i:02d}.png")
    t = np.arange(4000) / 16000
    for i in range(20):
        write_wav(files / f"sound{i:02d}.wav", 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t), 16000)
    long = np.arange(25 * 16000) / 16000
    write_wav(files / "recording.wav", 0.3 * np.sin(2 * np.pi * (220 + 6 * long) * long), 16000)
    for i in range(10):
        write_mp4(files / f"clip{i}.mp4", seconds=0.5, fps=4, width=28, height=28, rng=rng)
    for i in range(9):
        (files / f"note{i}.txt").write_text(f"note {i} about " + "rivers " * (i + 1))
    rows = [
        {"id": f"r{i:03d}", "text": f"row {i} about " + "cats " * (i % 4), "year": 1990 + i % 30} for i in range(900)
    ]
    (root / "table.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"files": files, "table": root / "table.jsonl", "rows": rows}


def change_large_library(library) -> None:
    """10 files added, 5 changed, 5 deleted, 3 renamed, 2 duplicated; 20 table rows edited."""
    from PIL import Image

    files, rng = library["files"], np.random.default_rng(12)
    for i in range(10):
        Image.fromarray(synthetic_image(36, 36, rng)).save(files / f"added{i}.png")
    for i in range(5):
        Image.fromarray(synthetic_image(28, 40, rng)).save(files / f"image{i:02d}.png")
        (files / f"sound{i:02d}.wav").unlink()
    for i in range(3):
        (files / f"note{i}.txt").rename(files / f"renamed{i}.txt")
    for i in range(2):
        shutil.copy(files / f"image{50 + i}.png", files / f"copy{i}.png")
    rows = [dict(row) for row in library["rows"]]
    for i in range(0, 200, 10):
        rows[i]["text"] = f"row {i}, rewritten"
    library["table"].write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_1000_item_library_updated_in_place_equals_a_fresh_run(tmp_path, embedder, kind):
    """The acceptance run: a 1,000-item library (segments included), changed in every way, in each store."""
    from lco_embedding import SegmentSpec

    library = write_large_library(tmp_path / "library")
    inputs, spec = [library["files"], library["table"]], SegmentSpec(audio=10)
    out = target(kind, tmp_path, "corpus")
    encode_corpus(inputs, out, model=embedder, segment=spec, shard_size=200, show_progress_bar=False)
    change_large_library(library)
    runner = CountingRunner()
    summary = encode_corpus(inputs, out, model=embedder, segment=spec, shard_size=200, runner=runner,
                            show_progress_bar=False)  # fmt: skip
    assert summary.update == {
        "new": 10, "changed": 25, "unchanged": 967, "moved": 3, "duplicate": 2, "deleted": 5, "embed": 35, "copy": 5,
    }  # fmt: skip
    assert len(runner.embedded) == 35
    fresh = target(kind, tmp_path, "fresh")
    encode_corpus(inputs, fresh, model=embedder, segment=spec, shard_size=200, show_progress_bar=False)

    def in_order(table):
        places = zip(table.column("id").to_pylist(), table.column("segment").to_pylist(), strict=True)
        return table.take([i for *_, i in sorted((a, -1 if b is None else b, i) for i, (a, b) in enumerate(places))])

    got, expected = in_order(read_embeddings(out)), in_order(read_embeddings(fresh))
    drop = [c for c in ("row", "embedding") if c in got.column_names]
    assert got.drop_columns(drop).to_pylist() == expected.drop_columns(drop).to_pylist()
    np.testing.assert_allclose(
        np.stack(got.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(expected.column("embedding").to_numpy(zero_copy_only=False)),
        atol=TOL,
        rtol=0,
    )
