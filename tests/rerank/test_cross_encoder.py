"""The cross-encoder backend: a sentence-transformers ``CrossEncoder`` (a tiny one built here) scores through its own
``predict``; ``LCOReranker`` gives exactly its scores and ranks by them."""

from __future__ import annotations

import numpy as np
import pytest

from lco_embedding import LCOReranker
from lco_embedding.testing import build_tiny_cross_encoder


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> str:
    return str(build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder")))


def test_the_cross_encoder_backend_equals_cross_encoder_predict(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    pairs = [("a cat", "a cat on a mat"), ("a dog", "the fog"), ("the quick brown fox", "jumps over the lazy dog")]
    reranker = LCOReranker(tiny_cross_encoder, device="cpu")
    assert reranker.backend == "cross-encoder"
    want = CrossEncoder(tiny_cross_encoder, device="cpu").predict(pairs)
    got = reranker.predict(pairs, batch_size=2)
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))
    assert np.ptp(got) > 0  # the pairs score apart: the comparison can fail
    ranked = reranker.rank("a cat", [document for _, document in pairs])
    assert [hit["corpus_id"] for hit in ranked] == list(np.argsort(-reranker.predict([("a cat", d) for _, d in pairs]),
                                                                    kind="stable"))  # fmt: skip
    given = LCOReranker(CrossEncoder(tiny_cross_encoder, device="cpu"))  # a loaded CrossEncoder is taken as it is
    np.testing.assert_array_equal(given.predict(pairs), got)
    with pytest.raises(ValueError, match="the generative backend's"):
        LCOReranker(tiny_cross_encoder, use_audio_in_video=True)
