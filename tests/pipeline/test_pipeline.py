"""The one pipeline: every caller embeds through ``LCOEmbedder.pipeline`` (the factory), its stages exist once, and
what the sentence-transformers module and the trainer compute equals ``encode`` on every modality."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from lco_embedding import LCOEmbedder
from lco_embedding.pipeline.options import EncodeOptions

TOL = 1e-5
PACKAGE = Path(__file__).resolve().parents[2] / "lco_embedding"


@pytest.fixture(scope="module")
def items(media) -> list:
    """Every modality, and mixed items."""
    return [
        "a short text",
        {"image": media["png"]},
        {"audio": media["wav"]},
        {"video": media["mp4_short"]},
        {"text": "a caption", "image": media["jpg"]},
        {"text": "spoken", "audio": media["flac"], "video": media["mp4_short"]},
    ]


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """Each call of the factory, named by the module that made it."""
    import inspect

    made: list[str] = []
    factory = LCOEmbedder.pipeline

    def counted(self, *args, **kwargs):
        caller = inspect.stack()[1]
        made.append(caller.frame.f_globals.get("__name__", "?"))
        return factory(self, *args, **kwargs)

    monkeypatch.setattr(LCOEmbedder, "pipeline", counted)
    return made


def test_every_caller_embeds_through_the_one_factory(tiny_omni, media, tmp_path, calls, items):
    from lco_embedding.corpus.job import encode_corpus
    from lco_embedding.distributed import ColumnItems, EmbedBatch
    from lco_embedding.serving.batcher import DynamicBatcher
    from lco_embedding.serving.metrics import ServerMetrics
    from lco_embedding.serving.settings import ServerSettings
    from lco_embedding.training.data import ContrastiveExample
    from lco_embedding.training.trainer import TrainingConfig, _Run

    model = LCOEmbedder(tiny_omni, device="cpu")
    found: dict[str, set[str]] = {}

    def called(name, run):
        calls.clear()
        run()
        assert calls, f"{name} did not use LCOEmbedder.pipeline"
        found[name] = set(calls)

    called("encode", lambda: model.encode(items[:2]))
    called("encode_iter", lambda: list(model.encode_iter(items[:2])))
    called("encode_outcomes", lambda: list(model.encode_outcomes(items[:2])))
    called("encode_segments", lambda: model.encode_segments("one sentence. " * 30, window=20))
    (tmp_path / "rows.jsonl").write_text('{"id": "a", "text": "a row"}\n')
    called("corpus job", lambda: encode_corpus([tmp_path / "rows.jsonl"], tmp_path / "out", model=model))
    actor = EmbedBatch(tiny_omni, {"device": "cpu"}, ColumnItems({"text": "text"}), "embedding", "error", "skip", {})
    called("Ray actor", lambda: actor(pa.table({"text": ["a row", "another"]})))
    called("server", lambda: DynamicBatcher(model, ServerSettings(), ServerMetrics()).close())
    called("sentence-transformers", lambda: model.to_sentence_transformer().encode(["a row"]))
    example = ContrastiveExample(anchor="a", positive="b", negatives=(), line=1)
    called("trainer", lambda: _Run(model, [example], tmp_path / "run", TrainingConfig(), 0, 1, "data"))
    assert set(found) == {"encode", "encode_iter", "encode_outcomes", "encode_segments", "corpus job", "Ray actor",
                          "server", "sentence-transformers", "trainer"}  # fmt: skip
    assert "lco_embedding.embedder.st_module" in found["sentence-transformers"]
    assert "lco_embedding.training.trainer" in found["trainer"]
    assert "lco_embedding.serving.batcher" in found["server"]


_MADE_ONLY_IN = {
    "Pipeline": {"lco_embedding/embedder/lco_embedder.py", "lco_embedding/pipeline/pipeline.py"},
    "Engine": {"lco_embedding/pipeline/pipeline.py"},
    "Featurizer": {"lco_embedding/pipeline/pipeline.py"},
    "Backbone": {"lco_embedding/embedder/lco_embedder.py"},
    "EncodeOptions": {
        "lco_embedding/embedder/lco_embedder.py"
    },  # elsewhere built from keywords: EncodeOptions.from_keywords
}
"""Each stage is constructed in one place: the pipeline's own module, or the embedder that owns the model."""


def test_each_stage_is_constructed_in_one_place():
    found: dict[str, set[str]] = {name: set() for name in _MADE_ONLY_IN}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in found:
                found[node.func.id].add(str(path.relative_to(PACKAGE.parent)))
    assert found == _MADE_ONLY_IN


def test_the_sentence_transformers_module_and_the_trainer_equal_encode_on_every_modality(tiny_omni, items):
    from lco_embedding.training.data import ContrastiveExample
    from lco_embedding.training.trainer import TrainingConfig, _Run

    model = LCOEmbedder(tiny_omni, device="cpu")
    expected = model.encode(items)
    st = model.to_sentence_transformer()
    np.testing.assert_allclose(st.encode(items, normalize_embeddings=True), expected, atol=TOL, rtol=0)
    example = ContrastiveExample(anchor="a", positive="b", negatives=(), line=1)
    run = _Run(model, [example], Path("unused"), TrainingConfig(max_length=300), 0, 1, "data")
    features = [run._features(i, item, i) for i, item in enumerate(items)]
    with torch.no_grad():
        rows = run._encode(features)
    trained = torch.nn.functional.normalize(rows.float(), dim=-1).numpy()
    np.testing.assert_allclose(trained, expected, atol=TOL, rtol=0)
    model.model.zero_grad(set_to_none=True)
    rows = run._encode(features[:2])  # with gradients: the graph reaches the weights
    rows.sum().backward()
    assert any(p.grad is not None for p in model.model.parameters())


def test_a_trainers_own_settings_leave_the_models_alone(tiny_omni):
    from lco_embedding.training.data import ContrastiveExample
    from lco_embedding.training.trainer import TrainingConfig, _Run

    model = LCOEmbedder(tiny_omni, device="cpu")
    example = ContrastiveExample(anchor="a", positive="b", negatives=(), line=1)
    run = _Run(model, [example], Path("unused"), TrainingConfig(max_length=650), 0, 1, "data")
    assert run.pipeline.featurizer.max_length == 650 and model.max_length == 300
    assert model.pipeline().featurizer.max_length == 300


def test_options_are_checked_once_when_made(embedder):
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        EncodeOptions(batch_size=0)
    with pytest.raises(ValueError, match="did you mean 'normalize_embeddings'"):
        embedder.encode("x", normalise_embeddings=False)
    with pytest.raises(ValueError, match="prompt_name 'nope' is not in prompts"):
        embedder.pipeline(prompt_name="nope")
    options = EncodeOptions.from_keywords(embedder, output_layers=[-1, 0])
    assert options.output_layers == (embedder.num_layers, 0)
    with pytest.raises(ValueError, match="segment= returns sentence embeddings"):
        embedder.encode("x", segment=__import__("lco_embedding").SegmentSpec(), precision="int8")
