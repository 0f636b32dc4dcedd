"""Modality-aware ranking (``search --calibrate``) on corpora with a known modality gap.

Each corpus (``lco_embedding.testing.modality_offset_corpus``) has one row per (modality, topic): the topic's
direction plus the modality's offset plus noise; a text query for each topic is its direction plus the text offset.
The right answers of a query are its topic's rows in every modality. For offsets from none to large, this prints
where the query's own image, sound and clip rank among all rows, raw and calibrated (median and worst over the
queries), and recall@4 (the share of the query's four rows in its top 4), searched through a Parquet folder.

    python benchmarks/modality_gap.py            # a few seconds, no model
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lco_embedding.corpus import search_folder  # noqa: E402
from lco_embedding.corpus.stores import open_store  # noqa: E402
from lco_embedding.testing import modality_offset_corpus  # noqa: E402
from tests.corpus.conftest import write_folder  # noqa: E402

OFFSETS = (0.0, 0.5, 1.0, 1.5, 2.5)
OTHERS = ("image", "audio", "video")


def _ranks(hits_per_query: list, topic_of: list[int]) -> tuple[list[int], float]:
    ranks, recalls = [], []
    for topic, hits in enumerate(hits_per_query):
        own = [i + 1 for i, h in enumerate(hits) if topic_of[h.row] == topic]
        modalities = [h.modality for h in hits if topic_of[h.row] == topic]
        ranks += [rank for rank, m in zip(own, modalities, strict=True) if m in OTHERS]
        recalls.append(sum(1 for h in hits[:4] if topic_of[h.row] == topic) / 4)
    return ranks, float(np.mean(recalls))


def main() -> None:
    print("| offset | own image/sound/clip rank, raw (median, worst) | calibrated | recall@4 raw | calibrated |")
    print("|---|---|---|---|---|")
    for offset in OFFSETS:
        vectors, modalities, topic_of, queries = modality_offset_corpus(np.random.default_rng(7), offset=offset)
        with tempfile.TemporaryDirectory() as folder:
            write_folder(folder + "/corpus", vectors, modalities, shard_size=50)
            store = open_store(folder + "/corpus")
            k = store.manifest["counts"]["embedded"]
            raw = search_folder(folder + "/corpus", queries, k=k)
            calibrated = search_folder(folder + "/corpus", queries, k=k, calibrate=True, query_modality="text")
        raw_ranks, raw_recall = _ranks(raw, topic_of)
        cal_ranks, cal_recall = _ranks(calibrated, topic_of)
        print(
            f"| {offset} | {np.median(raw_ranks):.0f}, {max(raw_ranks)} | {np.median(cal_ranks):.0f}, "
            f"{max(cal_ranks)} | {raw_recall:.2f} | {cal_recall:.2f} |"
        )


if __name__ == "__main__":
    main()
