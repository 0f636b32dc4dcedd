"""Last-token pooling (lco_embedding.pipeline.pooling): the last real token of each row, for either padding side."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lco_embedding.pipeline.pooling import last_token_indices, last_token_pool, rows_at


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6), right=st.booleans(), layers=st.booleans())
def test_the_last_real_token_of_each_row_for_either_padding_side(lengths, right, layers):
    width = max(lengths)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1 if right else 0
        if not right:
            mask[row, width - n :] = 1
    shape = (len(lengths), 3, width, 4) if layers else (len(lengths), width, 4)
    hidden = torch.randn(shape)
    last = [n - 1 if right else width - 1 for n in lengths]
    assert last_token_indices(mask).tolist() == last
    pooled = last_token_pool(hidden, mask)
    for row, position in enumerate(last):
        expected = hidden[row, :, position] if layers else hidden[row, position]
        assert torch.equal(pooled[row], expected)
    assert torch.equal(rows_at(hidden, torch.tensor(last)), pooled)


def test_a_row_of_padding_only_is_refused():
    with pytest.raises(ValueError, match="no tokens"):
        last_token_indices(torch.tensor([[1, 1], [0, 0]]))
