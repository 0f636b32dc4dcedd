"""Every example script runs end to end (on the tiny checkpoint), in one real subprocess: each script runs as
``__main__`` from the examples folder, one after the other, so the interpreter and torch start once; and what each
prints shows that it worked (shapes, counts, the self-similarity of 1, ranked hits), checked per example."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

FOLDER = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(p.name for p in FOLDER.glob("*.py") if not p.name.startswith("_"))
_RUNNER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for script in sys.argv[1:]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
    except BaseException:
        results[script] = {"ok": False, "stdout": out.getvalue(), "stderr": err.getvalue() + traceback.format_exc()}
    else:
        results[script] = {"ok": True, "stdout": out.getvalue(), "stderr": err.getvalue()}
print(json.dumps(results))
"""


SCORE = r"[+-]\d\.\d{3}"
HIT = re.compile(rf"^\s*\d\. {SCORE} (text|image|audio|video|mixed) +\S+", re.M)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[+-]?\d+\.\d+|[+-]?\d+\.(?!\d)", text)]


def _check_audio(out: str) -> None:
    rows = [_numbers(line) for line in out.strip().splitlines()]
    assert len(rows) == 3 and all(len(row) == 3 for row in rows)
    assert all(rows[i][i] == 1.0 and rows[i][j] == rows[j][i] for i in range(3) for j in range(3))


def _check_corpus(out: str) -> None:
    assert re.search(r"^9 embedded, 2 failed \(see .*errors\.jsonl\)$", out, re.M)
    assert len(HIT.findall(out)) == 3
    assert "9 rows: ['id', 'source', 'modality', 'embedding']" in out


def _check_cross_modal(out: str) -> None:
    lines = out.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert len(re.findall(rf"\S+\.(png|jpg|flac|wav|mp4) \({SCORE}\)", line)) == 3, line


def _check_demo(out: str) -> None:
    assert re.search(r"embedded 5 items of 5 kinds in [\d.]+ s -> \(5, 64\)", out)
    matrix = [line for line in out.splitlines() if re.match(r"^\s+(text|image|audio|video|mixed)  [+-]", line)]
    assert len(matrix) == 5
    for i, line in enumerate(matrix):
        values = _numbers(line)
        assert len(values) == 5 and values[i] == 1.0, line


def _check_documents(out: str) -> None:
    assert "page 2: (64,)" in out
    assert "pages: [1.0, 2.0] same as page 2: True" in out
    assert "corpus: 1 document(s) as 2 page rows" in out
    assert re.search(r"^best page for the photo: report\.pdf page [12]$", out, re.M)


def _check_image(out: str) -> None:
    same = re.search(r"path vs PIL vs array: (\[\[.*?\]\])", out, re.S)
    assert same and set(_numbers(same.group(1))) == {1.0}
    assert 0.5 < float(re.search(r"jpg vs png: ([\d.]+)", out).group(1)) < 1.0


def _check_mixed(out: str) -> None:
    assert out.strip() == "(3, 64)"


def _check_stores(out: str) -> None:
    assert len(HIT.findall(out)) == 3  # raw cosine, images and sounds only
    assert len(re.findall(rf"^\s*\d\. z=[+-]\d+\.\d+ \(cos {SCORE}\) \w+ +\S+", out, re.M)) == 3
    for modality, extensions in (("image", "png|jpg"), ("audio", "wav|flac"), ("video", "mp4")):
        assert re.search(rf"^best {modality}: \S+\.({extensions})$", out, re.M), modality
    search = re.search(r"LanceDB's search: (\[.*\])", out)
    assert search and len(eval(search.group(1))) == 3  # noqa: S307 (a printed list of names)


def _check_text(out: str) -> None:
    assert "embedding size: 64" in out
    assert len(re.findall(rf"^{SCORE}  \S", out, re.M)) == 3


def _check_video(out: str) -> None:
    value = float(re.search(r"2 fps vs 4 fps cosine: ([-\d.]+)", out).group(1))
    assert -1.0 <= value < 0.999  # other frames, another embedding


CHECKS = {
    "audio.py": _check_audio,
    "corpus.py": _check_corpus,
    "cross_modal_search.py": _check_cross_modal,
    "demo.py": _check_demo,
    "documents.py": _check_documents,
    "image.py": _check_image,
    "mixed.py": _check_mixed,
    "stores.py": _check_stores,
    "text.py": _check_text,
    "video.py": _check_video,
}
"""What each example must print (a new example needs its check here)."""


def test_every_example_runs_and_prints_what_shows_it_worked(tiny_omni):
    env = {**os.environ, "LCO_MODEL": tiny_omni, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(FOLDER)}
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *EXAMPLES], cwd=FOLDER, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.splitlines()[-1])
    assert sorted(results) == EXAMPLES and len(EXAMPLES) >= 8
    for script, outcome in results.items():
        assert outcome["ok"], f"{script} failed:\n{outcome['stderr'][-3000:]}"
        assert "TINY RANDOM" not in outcome["stderr"], script  # it loaded the given checkpoint, no fallback
        assert script in CHECKS, f"{script} has no check of what it prints: add one to CHECKS"
        try:
            CHECKS[script](outcome["stdout"])
        except (AssertionError, AttributeError, ValueError) as e:
            raise AssertionError(f"{script} printed what does not show it worked:\n{outcome['stdout']}") from e
