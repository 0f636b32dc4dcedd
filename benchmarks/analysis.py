"""How long the paper's analysis takes on given embeddings: ``analyze_pairs`` over 2,000 pairs x 29 hidden states x
2,048 dimensions (an Omni-3B's shape, anisotropic like last-token states: every row near one direction per layer),
metrics only, with the default metrics (mutual k-NN, CKA linear biased and unbiased, CKNNA, the gap, and each
side's anisotropy).

    python benchmarks/analysis.py                       # the full size
    python benchmarks/analysis.py --pairs 500 --layers 5 --conventions authors
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lco_embedding.analysis import DEFAULT_METRICS, analyze_pairs


def anisotropic_states(pairs: int, layers: int, dim: int, seed: int) -> np.ndarray:
    """``[pairs, layers, dim]`` float32 states whose layers grow more anisotropic with depth (0.5 to 0.99)."""
    rng = np.random.default_rng(seed)
    out = np.empty((pairs, layers, dim), dtype=np.float32)
    for layer in range(layers):
        level = 0.5 + 0.49 * layer / max(layers - 1, 1)
        direction = rng.standard_normal(dim)
        direction /= np.linalg.norm(direction)
        spread = np.sqrt(1 / level - 1) / np.sqrt(dim)
        out[:, layer] = direction + spread * rng.standard_normal((pairs, dim))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=29)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--conventions", default="paper", choices=["paper", "authors"])
    args = parser.parse_args()
    first = anisotropic_states(args.pairs, args.layers, args.dim, 0)
    second = 0.7 * first + 0.3 * anisotropic_states(args.pairs, args.layers, args.dim, 1)
    pairs = [({"image": f"{i}.jpg"}, f"caption {i}") for i in range(args.pairs)]
    began = time.perf_counter()
    table = analyze_pairs(None, pairs, embeddings=(first, second), conventions=args.conventions, model_name="bench")
    seconds = time.perf_counter() - began
    print(
        f"{args.pairs} pairs x {args.layers} layers x {args.dim} dims, metrics {', '.join(DEFAULT_METRICS)} + "
        f"anisotropy ({args.conventions}): {seconds:.1f} s, {len(table)} rows"
    )


if __name__ == "__main__":
    main()
