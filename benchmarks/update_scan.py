"""A re-run on an unchanged library of many small files: what it costs to find out that nothing changed.

Builds a tree of N small text files (default 100,000), writes a store of them once (through the corpus job, with a
stand-in runner that returns a fixed vector per item: no model is involved, so the build takes seconds), then times,
alternately and three times each, in one process:

* a bare ``os.walk`` + ``os.stat`` of every file of the tree (the least any change detection must do);
* ``encode_corpus`` on the same inputs and store: it walks and stats the tree, reads the store's catalog and
  compares; its runner raises if it is ever started (no model loads) and the files' contents are not read (checked
  by counting ``open`` calls on the tree's files).

Prints both times (the best of three) and their ratio. The target: the no-change run within 5x the bare walk.

    python benchmarks/update_scan.py            # 100,000 files
    python benchmarks/update_scan.py 20000
"""

from __future__ import annotations

import builtins
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIMENSION = 8


class StandInJob:
    """A runner job that embeds every record as the same unit vector (the store's contents do not matter here)."""

    def describe(self, options: Any) -> dict[str, Any]:
        return _description()

    def outcomes(self, records: Any, **encode_kwargs: Any) -> Any:
        import numpy as np

        vector = np.full(DIMENSION, DIMENSION**-0.5, dtype=np.float32)
        for record in records:
            yield record, (None if record.error else vector), record.error


def _description() -> dict[str, Any]:
    from lco_embedding.pipeline.settings import EmbedderSettings

    return {
        "model": {"name": "stand-in", "revision": None, "commit": None, "model_type": "none", "dtype": "float32"},
        "dimension": DIMENSION,
        "prompts": {"instruction": None, "named": {}, "suffixes": {}, "mixed_rule": "reference"},
        "settings": EmbedderSettings().saved(),
    }


class StandInRunner:
    """Starts :class:`StandInJob`; with ``refuse``, raises instead (a run that must not load a model)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse

    def start(self, spec: Any) -> Any:
        if self.refuse:
            raise AssertionError("the no-change run started the runner (it would load the model)")
        return StandInJob()


def build_tree(root: Path, files: int) -> None:
    per_folder = 1000
    for number in range(files):
        folder = root / f"d{number // per_folder:04d}"
        if number % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number:06d}.txt").write_text(f"note {number}")


def bare_walk(root: Path) -> int:
    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            count += 1
    return count


def main() -> None:
    from lco_embedding.corpus import encode_corpus

    files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "tree", Path(tmp) / "store"
        began = time.perf_counter()
        build_tree(root, files)
        print(f"tree of {files:,} files written in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        began = time.perf_counter()
        encode_corpus([root], out, model="stand-in", runner=StandInRunner(), shard_size=10_000, show_progress_bar=False)
        print(f"store built in {time.perf_counter() - began:.1f} s", file=sys.stderr)

        opened: list[str] = []
        real_open = builtins.open

        def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            if str(file).startswith(str(root)):
                opened.append(str(file))
            return real_open(file, *args, **kwargs)

        walks, reruns = [], []
        for _ in range(3):
            began = time.perf_counter()
            assert bare_walk(root) == files
            walks.append(time.perf_counter() - began)
            builtins.open = counting_open
            try:
                began = time.perf_counter()
                summary = encode_corpus([root], out, model="stand-in", runner=StandInRunner(refuse=True),
                                        show_progress_bar=False)  # fmt: skip
                reruns.append(time.perf_counter() - began)
            finally:
                builtins.open = real_open
            assert summary.already_complete and summary.update["unchanged"] == files, summary
        assert not opened, f"the no-change run opened {len(opened)} of the tree's files, e.g. {opened[:3]}"
        walk, rerun = min(walks), min(reruns)
        print("| files | os.walk + os.stat | no-change re-run | ratio |\n|---|---|---|---|")
        print(f"| {files:,} | {walk:.2f} s | {rerun:.2f} s | {rerun / walk:.1f}x |")


if __name__ == "__main__":
    main()
