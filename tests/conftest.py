"""Session fixtures: one tiny checkpoint of each architecture, test media, and a shared embedder.

Tests get the shared objects read-only; a test that changes an embedder builds its own.
"""

from __future__ import annotations

import pytest
import torch

from lco_embedding import LCOEmbedder
from lco_embedding.testing import build_tiny_checkpoint, make_test_media
from tests.skip_guard import pytest_sessionfinish  # noqa: F401 (a hook: fails a run that skips more than allowed)


@pytest.fixture(scope="session")
def tiny_omni(tmp_path_factory) -> str:
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-omni-thinker"), "omni-thinker"))


@pytest.fixture(scope="session")
def tiny_omni_full(tmp_path_factory) -> str:
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-omni-full"), "omni", seed=1))


@pytest.fixture(scope="session")
def tiny_vl(tmp_path_factory) -> str:
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-vl"), "qwen2_5_vl", seed=2))


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory) -> str:
    """A tiny Omni thinker whose tokenizer holds "yes" and "no" as single tokens (a generative reranker's answers)."""
    return str(
        build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-reranker"), "omni-thinker", seed=3, words=("yes", "no"))
    )


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, str]:
    return {name: str(path) for name, path in make_test_media(tmp_path_factory.mktemp("media")).items()}


@pytest.fixture(scope="session")
def embedder(tiny_omni) -> LCOEmbedder:
    return LCOEmbedder(tiny_omni, device="cpu")


@pytest.fixture(scope="session")
def reference(tiny_omni):
    """The model-card pipeline on the same checkpoint, float32, left padding."""
    from lco_embedding.testing.reference import ReferencePipeline

    return ReferencePipeline(tiny_omni)


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray (2 CPUs) for the whole session; its address lets subprocesses join it."""
    import ray

    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["address"]
    ray.shutdown()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def pytest_configure(config):
    # Under pytest-xdist each worker process gets one thread (and so do the subprocesses tests start): two torch
    # processes with two OpenMP threads each on two cores would spin against each other.
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


# The longest files first. Under --dist loadfile a file runs on one worker; the Ray tests alone take about three
# minutes, and started late they leave the other worker idle at the end (measured: 6:16 in collection order,
# 5:36 with them first). Started first, the other worker works through the rest meanwhile.
_FIRST = ("tests/test_distributed.py", "tests/training/test_cli.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.path.as_posix()
        return next((i for i, name in enumerate(_FIRST) if path.endswith(name)), len(_FIRST))

    items.sort(key=rank)  # stable: the order within and among the other files is kept
