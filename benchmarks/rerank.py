"""Reranking's host cost: pairs/s of the generative reranker on the near-free model (the tiny checkpoint, whose
forward pass costs almost nothing, as a GPU's nearly does), against the other ways to score the same pairs on the
same checkpoint, in one run:

* ``lco``: ``LCOReranker.predict`` (the embedding pipeline: featurize workers, token-budget batches, one forward);
  ``lco-fast``: the same with ``preprocessing="fast"`` (images resized in torch, not by the reference's PIL resize);
* ``st``: sentence-transformers' ``CrossEncoder`` with a generative scorer (``Transformer(transformer_task=
  "any-to-any")`` + ``LogitScore(yes, no)``), which loads the Qwen2.5-Omni thinker; its own prompt around the pair
  (a few tokens shorter than ours), its default sigmoid on the score;
* ``loop``: a plain transformers loop on our exact chat (texts cut at ``max_length`` as ours are; processor, left
  padding, ``model(**inputs).logits[:, -1]`` in batches), whose scores the ``lco`` ones must equal (checked, 1e-4).

Workloads: text pairs (a query and a passage), and image pairs (a text query and a photo) where ST takes them.

    python benchmarks/rerank.py            # about a minute on a 2-core CPU; run it on an otherwise idle machine
    python benchmarks/rerank.py --pairs 128
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

_WORDS = (
    "retrieval systems rank passages photographs recordings and clips by how closely their embeddings match a "
    "question the meeting covered revenue hiring plans supplier delays and the new warehouse cranes above the marsh"
).split()


def pairs_of(count: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    words = np.array(_WORDS)
    return [
        (" ".join(rng.choice(words, 6)), " ".join(rng.choice(words, int(rng.integers(30, 90))))) for _ in range(count)
    ]


def image_pairs(count: int, folder: Path) -> list[tuple[str, str]]:
    from PIL import Image

    from lco_embedding.testing import synthetic_image

    rng = np.random.default_rng(1)
    found = []
    for i in range(count):
        path = folder / f"photo{i}.png"
        Image.fromarray(synthetic_image(int(rng.integers(200, 400)), int(rng.integers(200, 400)), rng)).save(path)
        found.append(("a photo of " + " ".join(rng.choice(np.array(_WORDS), 3)), str(path)))
    return found


def timed(score, pairs, repeats: int = 2) -> tuple[float, np.ndarray]:
    score(pairs[:8])  # warm up
    best, scores = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        scores = np.asarray(score(pairs), dtype=np.float64)
        best = min(best, time.perf_counter() - start)
    return len(pairs) / best, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=512, help="text pairs timed per path")
    parser.add_argument("--images", type=int, default=96, help="image pairs timed per path")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore

    from lco_embedding import LCOReranker
    from lco_embedding.testing import build_tiny_checkpoint
    from lco_embedding.testing.reference import ReferencePipeline

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        checkpoint = str(build_tiny_checkpoint(root / "tiny", seed=3, words=("yes", "no")))
        ours = LCOReranker(checkpoint, device="cpu", dtype="float32")
        fast = LCOReranker(checkpoint, device="cpu", dtype="float32", preprocessing="fast")
        yes, no = ours.scorer.answer_ids
        transformer = Transformer(checkpoint, transformer_task="any-to-any")
        st = CrossEncoder(modules=[transformer, LogitScore(yes, no)], device="cpu")
        direct = ReferencePipeline(checkpoint)

        cut = ours.scorer.embedder.pipeline().featurizer.truncate  # texts cut at max_length, as the reranker cuts

        def loop(pairs: list[tuple[str, str]]) -> list[float]:
            chats = [ours.prompt.conversation(q, d, cut) for q, d in pairs]
            out = []
            for start in range(0, len(chats), args.batch_size):
                batch = chats[start : start + args.batch_size]
                text = direct.processor.apply_chat_template(batch, tokenize=False, add_generation_prompt=True)
                inputs = direct.processor(text=text, return_tensors="pt", padding=True)
                with torch.no_grad():
                    logits = direct.model(**inputs).logits[:, -1].float()
                out += (logits[:, yes] - logits[:, no]).tolist()
            return out

        workloads = {"text": pairs_of(args.pairs), "image": image_pairs(args.images, root)}
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
              f"{torch.get_num_threads()}; batch size {args.batch_size}")  # fmt: skip
        for name, pairs in workloads.items():
            rates: dict[str, float] = {}
            # Images decoded once, before the clocks start, for both (ST takes PIL images; ours the same objects).
            documents = pairs if name == "text" else [(q, _image(d)) for q, d in pairs]
            ours_pairs = pairs if name == "text" else [(q, {"image": image}) for q, image in documents]
            rates["lco"], lco_scores = timed(lambda p: ours.predict(p, batch_size=args.batch_size), ours_pairs)
            if name == "image":  # images resized in torch (preprocessing="fast") instead of the reference's PIL resize
                rates["lco-fast"], _ = timed(lambda p: fast.predict(p, batch_size=args.batch_size), ours_pairs)
            try:
                rates["st"], _ = timed(lambda p: st.predict(p, batch_size=args.batch_size), documents)
            except Exception as e:  # noqa: BLE001 - report what ST cannot do, and go on
                print(f"  {name}: sentence-transformers could not score these pairs ({type(e).__name__}: {e})")
            if name == "text":
                rates["loop"], loop_scores = timed(loop, pairs)
                gap = float(np.max(np.abs(lco_scores - loop_scores)))
                assert gap < 1e-4, f"the lco scores differ from the loop's by {gap:.2e}"
            line = ", ".join(f"{path} {rate:,.1f} pairs/s" for path, rate in rates.items())
            mine, theirs = [p for p in rates if p.startswith("lco")], [p for p in rates if not p.startswith("lco")]
            ratios = ", ".join(f"{a}/{b} {rates[a] / rates[b]:.2f}x" for a in mine for b in theirs)
            print(f"  {name} ({len(pairs)} pairs): {line}; {ratios}")


def _image(path: str):
    from PIL import Image

    return Image.open(path).convert("RGB")


if __name__ == "__main__":
    main()
