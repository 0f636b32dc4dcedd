"""Featurize throughput per modality: inline vs background threads vs worker processes (no model involved).

Featurizing is loading, decoding, resizing, the chat template and the processor (tokenizing, patchifying, Whisper
features): what ``num_workers`` / ``worker_type`` move off the thread that runs the model. This measures how fast
each kind of worker pool gets through the benchmark workloads' items, so the choice per modality can be documented.
Process pools are started and warmed up before timing (they are kept alive across ``encode`` calls).

    python benchmarks/workers.py --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import build  # noqa: E402
from workloads import build_workloads  # noqa: E402

from lco_embedding import LCOEmbedder  # noqa: E402
from lco_embedding.pipeline.featurize import featurize_in_worker, install_worker_featurizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="pass over each quick workload this many times")
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "lco-benchmarks"))
    args = parser.parse_args()

    checkpoint = str(build("cpu-7b-scaled", args.folder))
    model = LCOEmbedder(checkpoint, device="cpu", max_length=None)
    workloads = build_workloads(Path(args.folder) / "media-quick", model.processor.tokenizer, "quick")
    featurizer = model.pipeline().featurizer
    threads = ThreadPoolExecutor(args.workers)
    processes = ProcessPoolExecutor(
        args.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=install_worker_featurizer,
        initargs=(featurizer,),
    )
    task = partial(featurize_in_worker, modality=None, prompt=None)
    inline_task = partial(featurizer, modality=None, prompt=None)
    for workload in workloads.values():  # warm up every decoder in every pool
        list(map(inline_task, range(len(workload.items)), workload.items))
        list(threads.map(inline_task, range(len(workload.items)), workload.items))
        list(processes.map(task, range(len(workload.items)), workload.items))

    print(f"{'workload':<8} {'inline':>10} {'threads':>10} {'processes':>10}   (items/s, {args.workers} workers)")
    for name, workload in workloads.items():
        items = workload.items * args.repeat
        indices = range(len(items))
        rates = []
        for mapper, function in ((map, inline_task), (threads.map, inline_task), (processes.map, task)):
            start = time.perf_counter()
            list(mapper(function, indices, items))
            rates.append(len(items) / (time.perf_counter() - start))
        print(f"{name:<8} {rates[0]:10.1f} {rates[1]:10.1f} {rates[2]:10.1f}")
    threads.shutdown()
    processes.shutdown()


if __name__ == "__main__":
    main()
