"""Token-budget batch planning (lco_embedding.pipeline.batching): every item once, within the limits, at least cost."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lco_embedding.pipeline.batching import padded_tokens, plan_batches


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 2000), max_size=60),
    max_tokens=st.integers(1, 5000),
    batch_size=st.integers(1, 16),
)
def test_plan_batches_keeps_every_item_once_within_limits(lengths, max_tokens, batch_size):
    plan = plan_batches(list(enumerate(lengths)), max_tokens, batch_size)
    assert sorted(itertools.chain.from_iterable(plan)) == list(range(len(lengths)))
    for batch in plan:
        assert 1 <= len(batch) <= batch_size
        assert len(batch) == 1 or padded_tokens([lengths[i] for i in batch]) <= max_tokens


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=7),
    max_tokens=st.integers(1, 1000),
    batch_size=st.integers(1, 7),
    overhead=st.integers(0, 200),
)
def test_plan_batches_finds_the_cheapest_cut(lengths, max_tokens, batch_size, overhead):
    """Against brute force over every cut of the sorted order into runs."""

    def cost(plan):
        return sum(padded_tokens([lengths[i] for i in batch]) + overhead for batch in plan)

    def feasible(plan):
        return all(
            len(b) <= batch_size and (len(b) == 1 or padded_tokens([lengths[i] for i in b]) <= max_tokens) for b in plan
        )

    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = None
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        plan, current = [], [order[0]]
        for cut, i in zip(cuts, order[1:], strict=True):
            if cut:
                plan.append(current)
                current = []
            current.append(i)
        plan.append(current)
        if feasible(plan) and (best is None or cost(plan) < best):
            best = cost(plan)
    plan = plan_batches(list(enumerate(lengths)), max_tokens, batch_size, overhead)
    assert feasible(plan) and cost(plan) == best


def test_plan_batches_rejects_a_non_positive_budget():
    with pytest.raises(ValueError, match="positive"):
        plan_batches([(0, 5)], 0, 4)
