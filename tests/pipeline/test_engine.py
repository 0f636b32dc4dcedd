"""The throughput engine: token-budget batching, background featurize, streams, OOM recovery, the hot path.

Every result is compared with encoding the same items one by one (float32, 1e-5).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lco_embedding import EncodeReport, LCOEmbedder, LCOEmbeddingError, LCOInputError
from lco_embedding.pipeline.batching import padded_tokens
from lco_embedding.testing import simulate_oom
from lco_embedding.testing.reference import text_content

TOL = 1e-5


@pytest.fixture(scope="module")
def corpus(media) -> list:
    """A mixed corpus: texts of very different lengths, every modality, mixed items."""
    return [
        "short",
        "a medium length sentence about cats and dogs " * 3,
        {"image": media["png"]},
        "x " * 250,
        {"audio": media["wav"]},
        {"text": "a caption", "image": media["jpg"]},
        {"video": media["mp4_short"]},
        {"audio": media["flac"], "text": "with speech"},
        "the of and to in is",
        {"image": media["gray_png"]},
        "one more " * 40,
        {"image": media["jpg"], "audio": media["wav_22k_stereo"]},
    ]


@pytest.fixture(scope="module")
def one_by_one(embedder, corpus) -> np.ndarray:
    return np.stack([embedder.encode(item, num_workers=0) for item in corpus])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(12)),
    count=st.integers(1, 12),
    max_tokens=st.integers(1, 3000),
    batch_size=st.integers(1, 12),
    num_workers=st.sampled_from([0, 2]),
)
def test_any_order_budget_and_batch_size_gives_the_one_by_one_result(
    embedder, corpus, one_by_one, order, count, max_tokens, batch_size, num_workers
):
    chosen = list(order[:count])
    report = EncodeReport()
    out = embedder.encode(
        [corpus[i] for i in chosen],
        batch_size=batch_size,
        max_tokens_per_batch=max_tokens,
        num_workers=num_workers,
        report=report,
    )
    np.testing.assert_allclose(out, one_by_one[chosen], atol=TOL, rtol=0)
    stats = report.stats
    assert stats.batches >= -(-count // batch_size)
    assert stats.tokens <= stats.padded_tokens


def test_batches_are_planned_by_length_under_the_budget(embedder, corpus, one_by_one):
    seen: list[list[int]] = []

    def record(batch) -> None:
        seen.append([features.length for features in batch])

    embedder.parts.fault = record
    try:
        out = embedder.encode(corpus, max_tokens_per_batch=600, batch_size=4)
        assert sum(len(b) for b in seen) == len(corpus)
        for lengths in seen:
            assert len(lengths) <= 4
            assert len(lengths) == 1 or padded_tokens(lengths) <= 600
            assert lengths == sorted(lengths, reverse=True)
        seen.clear()
        embedder.encode(corpus, max_tokens_per_batch=5000, batch_size=4)  # one window holds the whole corpus
    finally:
        embedder.parts.fault = None
    np.testing.assert_allclose(out, one_by_one, atol=TOL, rtol=0)
    # Longest first within a window, so an out-of-memory error shows on the first batch.
    assert [b[0] for b in seen] == sorted((b[0] for b in seen), reverse=True)


def test_default_workers_and_budget_on_cpu(embedder):
    assert embedder.pipeline().workers() == 0  # the forward already uses every core
    report = EncodeReport()
    embedder.encode(["x"], report=report)
    assert report.stats.max_tokens_per_batch == 8192


def test_a_generator_is_read_lazily(embedder):
    pulled = 0

    def stream():
        nonlocal pulled
        for i in range(400):
            pulled += 1
            yield f"item number {i}"

    iterator = embedder.encode_iter(stream(), batch_size=4)
    first_index, first = next(iterator)
    assert first_index == 0 and first.shape == (64,)
    # About one window (16 x batch_size items) plus the look-ahead has been read, not the whole stream.
    assert pulled < 200
    rest = list(iterator)
    assert [i for i, _ in rest] == list(range(1, 400))
    assert pulled == 400


def test_encode_takes_any_iterable_and_encode_iter_matches_encode(embedder, corpus, one_by_one):
    np.testing.assert_allclose(embedder.encode(iter(corpus)), one_by_one, atol=TOL, rtol=0)
    np.testing.assert_allclose(embedder.encode(tuple(corpus)), one_by_one, atol=TOL, rtol=0)
    streamed = list(embedder.encode_iter(item for item in corpus))
    assert [i for i, _ in streamed] == list(range(len(corpus)))
    np.testing.assert_allclose(np.stack([e for _, e in streamed]), one_by_one, atol=TOL, rtol=0)


def test_encode_iter_skips_and_reports_bad_items(embedder, corpus, one_by_one):
    items = [corpus[0], {"image": "/no/such/file.png"}, corpus[1]]
    report = EncodeReport()
    out = list(embedder.encode_iter(items, on_error="skip", report=report))
    assert [i for i, _ in out] == [0, 2]
    np.testing.assert_allclose(out[1][1], one_by_one[1], atol=TOL, rtol=0)
    assert list(report.errors) == [1]
    assert report.kept == []  # positions come with the pairs; a list would grow with the stream
    with pytest.raises(LCOInputError, match="Input 1"):
        list(embedder.encode_iter(items))
    with pytest.raises(ValueError, match="int8"):
        next(embedder.encode_iter(items, precision="int8"))
    with pytest.raises(ValueError, match="iterable"):
        next(embedder.encode_iter("one string"))


def test_oom_splits_the_batch_lowers_the_budget_and_loses_nothing(embedder, corpus, one_by_one, caplog):
    report = EncodeReport()
    with simulate_oom(embedder, max_padded_tokens=700) as refused:
        out = embedder.encode(corpus, max_tokens_per_batch=5000, batch_size=12, report=report)
    np.testing.assert_allclose(out, one_by_one, atol=TOL, rtol=0)
    stats = report.stats
    assert refused and stats.oom_splits >= 1
    assert stats.max_tokens_per_batch <= 700 // 2 + 1 or stats.max_tokens_per_batch < 5000
    assert "Out of memory" in caplog.text
    assert report.kept == list(range(len(corpus)))


def test_an_item_that_does_not_fit_alone_is_named(embedder, corpus, one_by_one):
    lengths = [embedder.pipeline().featurizer(i, item, None, None).length for i, item in enumerate(corpus)]
    longest = int(np.argmax(lengths))
    limit = sorted(lengths)[-2]  # everything but the longest item fits alone
    with simulate_oom(embedder, max_padded_tokens=limit):
        with pytest.raises(LCOEmbeddingError, match=f"Input {longest}: does not fit in memory") as info:
            embedder.encode(corpus)
        assert info.value.index == longest
        report = EncodeReport()
        out = embedder.encode(corpus, on_error="skip", report=report)
    kept = [i for i in range(len(corpus)) if i != longest]
    assert report.kept == kept and list(report.errors) == [longest]
    np.testing.assert_allclose(out, one_by_one[kept], atol=TOL, rtol=0)


def test_a_fault_of_the_forward_pass_raises_even_when_skipping(embedder, corpus, monkeypatch):
    calls = []

    def broken(batch):
        calls.append(len(batch))
        raise RuntimeError("a bug in the forward pass")

    monkeypatch.setattr(embedder.parts, "fault", broken)
    with pytest.raises(RuntimeError, match="a bug in the forward pass"):
        embedder.encode(corpus, on_error="skip")
    assert calls == calls[:1]  # not retried item by item: it is not an item's fault


def test_featurize_runs_in_background_threads(embedder, corpus):
    names: set[str] = set()
    featurizer_call = type(embedder.pipeline().featurizer).__call__

    def spy(self, *args, **kwargs):
        names.add(threading.current_thread().name)
        return featurizer_call(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(embedder.pipeline().featurizer), "__call__", spy)
        embedder.encode(corpus[:4], num_workers=2)
        assert names and all(name.startswith("lco-featurize") for name in names)
        names.clear()
        embedder.encode(corpus[:4], num_workers=0)
        assert names == {threading.current_thread().name}


def test_process_workers_give_the_same_result(tiny_omni, corpus, one_by_one):
    with LCOEmbedder(tiny_omni, device="cpu", num_workers=1, worker_type="process") as model:
        out = model.encode(corpus)
        pool = model.parts.workers._pool
        assert pool is not None
        model.encode(corpus[:2])
        assert model.parts.workers._pool is pool  # kept between calls
    assert model.parts.workers._pool is None
    np.testing.assert_allclose(out, one_by_one, atol=TOL, rtol=0)


def test_hot_path_has_no_vocabulary_head_cache_or_extra_hidden_states(embedder, corpus):
    """The forward never runs the vocabulary head and returns no other layers' states; the only keys and values
    kept are those of a batch's shared prefix (the template's system turn), run once for one row."""
    head_calls = []
    handle = embedder.model.lm_head.register_forward_hook(lambda *args: head_calls.append(1))
    calls = []
    hook = embedder.parts.backbone.inner.register_forward_hook(
        lambda module, args, kwargs, out: calls.append((kwargs, out)), with_kwargs=True
    )
    try:
        embedder.encode(corpus)
    finally:
        handle.remove()
        hook.remove()
    assert not head_calls and calls
    keyword = embedder.parts.backbone.cache_keyword
    prefix_runs = 0
    for kwargs, out in calls:
        assert getattr(out, "hidden_states", None) is None
        if kwargs.get("use_cache"):
            prefix_runs += 1
            assert kwargs["input_ids"].shape[0] == 1  # a prefix, run once
        else:
            assert kwargs.get(keyword) is not None or out.cache is None  # no cache built for the rows
    assert prefix_runs <= len(embedder.parts.backbone._prefixes)  # (none when an earlier test left the prefix kept)
    assert any(kwargs.get(keyword) is not None for kwargs, _ in calls)


def test_peak_memory_of_a_forward_is_below_the_reference_forward(tmp_path):
    """Memory measurement (every allocation recorded by the torch profiler): the reference materializes
    [batch, seq, vocab] logits and keeps every layer's hidden state; we do neither. A vocabulary of 8,192 (as large
    relative to the hidden size 64 as Qwen's 152k is to 3,584... and more) makes the logits visible."""
    from lco_embedding.testing import build_tiny_checkpoint
    from lco_embedding.testing.reference import ReferencePipeline

    path = str(build_tiny_checkpoint(tmp_path, text_config={"vocab_size": 8192, "num_hidden_layers": 4}))
    model = LCOEmbedder(path, device="cpu", num_workers=0)
    reference = ReferencePipeline(path)
    texts = ["word " * 200] * 4

    def peak_bytes(fn) -> int:
        from torch.profiler import ProfilerActivity, profile

        fn()  # warm up
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        current = peak = 0
        # Every allocation and free is attributed to exactly one event (an op's own, or a bare "[memory]" one).
        for event in sorted(prof.events(), key=lambda e: e.time_range.start):
            current += event.self_cpu_memory_usage
            peak = max(peak, current)
        return peak

    report = EncodeReport()
    ours = peak_bytes(lambda: model.encode(texts, report=report))
    theirs = peak_bytes(lambda: reference.embed([text_content(t) for t in texts]))
    logits = report.stats.tokens * 8192 * 4
    assert theirs > logits  # the measurement sees the reference's logits ...
    assert ours < 0.5 * theirs, (ours, theirs)  # ... and ours has nothing of the kind


def test_forward_costs_learn_the_fixed_cost_of_a_pass():
    from lco_embedding.pipeline.engine import ForwardCosts

    costs = ForwardCosts()
    costs.add(10_000, 99.0)  # the first pass (warm-up) is left out
    rng = np.random.default_rng(0)
    for tokens in rng.integers(50, 5000, size=40):
        costs.add(int(tokens), 0.02 + 1e-5 * tokens + rng.normal(0, 1e-5))  # 20 ms per pass, 10 µs per token
    assert costs.overhead() == pytest.approx(2000, rel=0.05)
    same = ForwardCosts()
    for _ in range(20):
        same.add(1000, 0.03)
    assert same.overhead() is None  # passes of one size cannot tell fixed from per-token cost


def test_the_engine_plans_with_the_measured_overhead_and_times_its_passes(embedder, corpus):
    from lco_embedding.pipeline.engine import Engine, ForwardCosts

    costs = ForwardCosts()
    for tokens in range(100, 2100, 100):
        costs.add(tokens, 0.01 + 1e-5 * tokens)  # 10 ms per pass = 1,000 tokens' worth
    template = embedder.pipeline().engine()
    engine = Engine(template.featurize, template.forward, max_tokens=5000, batch_size=8, batch_overhead=32, costs=costs)
    assert engine.batch_overhead == engine.stats.batch_overhead == pytest.approx(1000, abs=1)
    features = [embedder.pipeline().featurizer(i, item, None, None) for i, item in enumerate(corpus[:4])]
    recorded = len(costs)
    outcomes = engine.execute(features)
    assert [o.index for o in outcomes] == [0, 1, 2, 3] and all(o.ok for o in outcomes) and len(costs) == recorded + 1
