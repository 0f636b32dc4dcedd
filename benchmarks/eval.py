"""``lco-embed eval`` end to end on a mixed-modality dataset: 1,000 corpus rows (texts, images, sounds, videos) and
200 queries, on the tiny checkpoint, in one process; prints the time of each stage and the results table.

    python benchmarks/eval.py                 # 1,000 rows + 200 queries
    python benchmarks/eval.py --rows 300 --queries 60
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = "river stone light field cloud market engine garden letter winter signal harbor".split()
SHARES = {"text": 0.55, "image": 0.25, "audio": 0.12, "video": 0.08}


def write(root: Path, rows: int, queries: int, seed: int = 0) -> None:
    """A dataset of ``rows`` corpus rows in :data:`SHARES` and ``queries`` queries, each a copy (media) or a light
    edit (text) of one corpus row, its one relevant document."""
    from PIL import Image

    from lco_embedding.testing import synthetic_image, write_mp4, write_wav

    rng = np.random.default_rng(seed)
    (root / "media").mkdir(parents=True)
    corpus = []
    for modality, share in SHARES.items():
        for i in range(round(rows * share)):
            key = f"{modality[0]}{i}"
            if modality == "text":
                corpus.append({"_id": key, "text": " ".join(rng.choice(WORDS, size=int(rng.integers(6, 30))))})
            elif modality == "image":
                Image.fromarray(synthetic_image(64, 96, rng)).save(root / "media" / f"{key}.png")
                corpus.append({"_id": key, "image": f"media/{key}.png"})
            elif modality == "audio":
                t = np.arange(int(16000 * rng.uniform(1, 3))) / 16000
                write_wav(root / "media" / f"{key}.wav", 0.3 * np.sin(2 * np.pi * rng.uniform(150, 900) * t), 16000)
                corpus.append({"_id": key, "audio": f"media/{key}.wav"})
            else:
                write_mp4(root / "media" / f"{key}.mp4", seconds=1, fps=4, width=56, height=56, rng=rng)
                corpus.append({"_id": key, "video": f"media/{key}.mp4"})
    picked = rng.choice(len(corpus), size=queries, replace=False)
    query_rows, qrels = [], []
    for number, index in enumerate(picked):
        row = dict(corpus[index])
        target = row.pop("_id")
        if "text" in row:
            row["text"] += "."
        query_rows.append({"_id": f"q{number}", **row})
        qrels.append(f"q{number}\t{target}\t1")
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in query_rows))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    from lco_embedding import LCOEmbedder
    from lco_embedding.evaluation import evaluate_retrieval
    from lco_embedding.testing import build_tiny_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        began = time.perf_counter()
        write(root / "data", args.rows, args.queries)
        written = time.perf_counter()
        model = LCOEmbedder(str(build_tiny_checkpoint(root / "tiny")), device="cpu")
        loaded = time.perf_counter()
        result = evaluate_retrieval(root / "data", root / "out", model=model)
        done = time.perf_counter()
    print(result.table())
    print(
        f"\n{args.rows} corpus rows + {args.queries} queries: evaluation {done - loaded:.1f} s "
        f"(dataset written in {written - began:.1f} s, model loaded in {loaded - written:.1f} s)"
    )


if __name__ == "__main__":
    main()
