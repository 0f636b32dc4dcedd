"""``lco-embed encode`` on a changed folder, as a user runs it: the summary of the update, ``--dry-run``, and an
update ``kill -9``'d at three moments (while fingerprinting, mid-embedding, between the last staged write and the
update's commit) with ``lco-embed search`` run at each moment: it answers as before the update, and the re-run
equals a fresh run on the new state."""

from __future__ import annotations

import json
import shutil

import numpy as np

from lco_embedding.corpus import read_embeddings
from tests.cli.conftest import copy_media, kill_at, run_cli

TOL = 1e-5


def _search(out) -> list[tuple[str, float]]:
    hits = json.loads(run_cli("search", out, "a photo of noise", "-k", 20, "--json", "-q").stdout)
    return [(hit["id"], round(hit["score"], 5)) for hit in hits]


def _rows(out) -> dict[str, np.ndarray]:
    table = read_embeddings(out)
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return dict(zip(table.column("id").to_pylist(), vectors, strict=True))


def _same(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    np.testing.assert_allclose(np.stack([got[k] for k in sorted(got)]), np.stack([expected[k] for k in sorted(got)]),
                               atol=TOL, rtol=0)  # fmt: skip


def test_a_killed_update_is_never_seen_half_applied(tmp_path, media, tiny_omni):
    library = copy_media(
        media,
        tmp_path / "library",
        {"a.png": "png", "b.jpg": "jpg", "c.wav": "wav", "d.flac": "flac", "e.png": "png_rgba"},
    )
    (library / "note.txt").write_text("a note about rivers")
    args = ["encode", library, "--model", tiny_omni, "--shard-size", 1, "-q"]
    out = tmp_path / "out"
    run_cli(*args, "--out", out)
    rows_before, hits_before = _rows(out), _search(out)

    copy_media(media, library, {"new.mp4": "mp4_short", "new.wav": "wav_22k_stereo"})
    shutil.copyfile(media["gray_png"], library / "a.png")  # changed
    (library / "c.wav").unlink()  # deleted
    (library / "note.txt").rename(library / "renamed.txt")  # moved
    planned = run_cli(*args, "--out", out, "--dry-run").stdout
    assert "Would update" in planned and "7 items: 2 new, 1 changed, 3 unchanged, 1 moved, 1 deleted" in planned

    for point in ("fingerprint:2", "record:2", "update"):
        kill_at([*args, "--out", out], point)
        _same(_rows(out), rows_before)
        assert _search(out) == hits_before, point
    result = run_cli(*args, "--out", out)
    assert "7 items: 2 new, 1 changed, 3 unchanged, 1 moved, 1 deleted; embedded 3, copied 1 in" in result.stdout

    fresh = tmp_path / "fresh"
    run_cli(*args, "--out", fresh)
    _same(_rows(out), _rows(fresh))
    assert "Nothing to do" in run_cli(*args, "--out", out).stdout
