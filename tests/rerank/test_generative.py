"""The generative reranker on a tiny Qwen2.5-Omni thinker whose tokenizer holds "yes" and "no": its scores equal
``logit(yes) - logit(no)`` computed directly with transformers on the chat written out by hand (the layout
docs/rerank.md gives), for every modality; they do not depend on batch size or order; bad pairs are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from lco_embedding import LCOEmbedder, LCOInputError, LCOReranker
from lco_embedding.rerank.prompt import DEFAULT_INSTRUCTION, DEFAULT_SYSTEM, RerankPrompt
from lco_embedding.testing.reference import MAX_PIXELS, ReferencePipeline

TOL = 1e-5
HEAD = f"<Instruct>: {DEFAULT_INSTRUCTION}\n<Query>: "


def chat(*content) -> list[dict]:
    """The documented chat: the system message, then the user's parts as given."""
    parts = [{"type": "text", "text": part} if isinstance(part, str) else part for part in content]
    return [
        {"role": "system", "content": [{"type": "text", "text": DEFAULT_SYSTEM}]},
        {"role": "user", "content": parts},
    ]


def image(path) -> dict:
    return {"type": "image", "image": str(path), "max_pixels": MAX_PIXELS}


@pytest.fixture(scope="module")
def reranker(tiny_reranker) -> LCOReranker:
    return LCOReranker(tiny_reranker, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def direct(tiny_reranker) -> ReferencePipeline:
    return ReferencePipeline(tiny_reranker)


def test_scores_equal_the_direct_logit_difference_for_every_modality(reranker, direct, media):
    doc = "\n<Document>: "
    cases = [
        (("a cat on a mat", "a dog in the fog"), chat(HEAD + "a cat on a mat" + doc + "a dog in the fog")),
        (("a gradient", {"image": media["png"]}), chat(HEAD + "a gradient" + doc, image(media["png"]))),
        (({"image": media["jpg"]}, "a photo"), chat(HEAD, image(media["jpg"]), doc + "a photo")),
        (("a tone", {"audio": media["wav"]}), chat(HEAD + "a tone" + doc, {"type": "audio", "audio": media["wav"]})),
        (("a clip", {"video": media["mp4"]}), chat(HEAD + "a clip" + doc, {"type": "video", "video": media["mp4"]})),
        (
            ({"text": "a caption", "image": media["png"]}, {"audio": media["flac"], "text": "a chirp"}),
            chat(HEAD, image(media["png"]), "a caption" + doc, {"type": "audio", "audio": media["flac"]}, "a chirp"),
        ),
    ]
    answers = reranker.scorer.answer_ids
    got = reranker.predict([pair for pair, _ in cases])
    want = [direct.answer_logits(messages, answers) for _, messages in cases]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    assert np.ptp(got) > 1e-2  # the pairs score apart: the comparison can fail


def test_scores_do_not_depend_on_batch_size_or_order(reranker, media):
    pairs = [
        ("a cat", "a cat on a mat"),
        ("a gradient", {"image": media["png"]}),
        ("tone", {"audio": media["wav"]}),
        ("a dog", "the quick brown fox jumps over the lazy dog " * 6),
        ("fog", {"image": media["jpg"]}),
    ]
    one_by_one = np.array([reranker.predict([pair], batch_size=1)[0] for pair in pairs])
    together = reranker.predict(pairs, batch_size=8)
    reversed_ = reranker.predict(pairs[::-1], batch_size=3)[::-1]
    np.testing.assert_allclose(together, one_by_one, atol=TOL, rtol=0)
    np.testing.assert_allclose(reversed_, one_by_one, atol=TOL, rtol=0)


def test_rank_orders_by_score_and_keeps_ties_in_order(reranker, media):
    documents = ["a dog in the fog", {"image": media["png"]}, "a cat on a mat", "a dog in the fog"]
    scores = reranker.predict([("a cat", d) for d in documents])
    ranked = reranker.rank("a cat", documents, return_documents=True)
    assert [hit["corpus_id"] for hit in ranked] == sorted(range(4), key=lambda i: (-scores[i], i))
    assert ranked[0]["document"] == documents[ranked[0]["corpus_id"]]
    assert [hit["corpus_id"] for hit in reranker.rank("a cat", documents, top_k=2)] == [
        h["corpus_id"] for h in ranked[:2]
    ]


def test_the_reranker_shares_an_embedders_weights_and_the_embedding_path(tiny_reranker, reranker):
    embedder = LCOEmbedder(tiny_reranker, device="cpu", dtype="float32")
    shared = LCOReranker(embedder)
    assert shared.backend == "generative" and shared.scorer.embedder is embedder
    with pytest.raises(ValueError, match="apply when the model is given by name"):
        LCOReranker(embedder, device="cpu")
    pairs = [("a cat", "a mat"), ("fog", "a dog")]
    np.testing.assert_allclose(shared.predict(pairs), reranker.predict(pairs), atol=TOL, rtol=0)
    # the score is the embedding pipeline's last hidden state against the head's two rows: encode's own output
    hidden = embedder.encode([RerankPrompt().conversation(*pairs[0])], normalize_embeddings=False)[0]
    head = embedder.model.get_output_embeddings().weight.detach().float().numpy()
    yes, no = shared.scorer.answer_ids
    assert abs(float(hidden @ (head[yes] - head[no])) - shared.predict(pairs[:1])[0]) < TOL


def test_bad_pairs_are_errors_that_name_the_pair_and_the_fix(reranker, tiny_omni, media):
    from lco_embedding.core.errors import EncodeReport

    with pytest.raises(LCOInputError, match="the document: empty text"):
        reranker.predict([("a cat", "a mat"), ("a cat", "  ")])
    report = EncodeReport()
    scores = reranker.predict([("a cat", "a mat"), ("a cat", {"image": media["corrupt_png"]})], on_error="skip",
                              report=report)  # fmt: skip
    assert np.isfinite(scores[0]) and np.isnan(scores[1]) and list(report.errors) == [1]
    with pytest.raises(LCOInputError, match="carries its own media settings"):
        reranker.predict([("a cat", {"image": media["png"], "max_pixels": 1000})])
    with pytest.raises(ValueError, match="pair 0 is not a"):
        reranker.predict(["just one"])
    with pytest.raises(ValueError, match="reads the answer 'yes' as 3 tokens"):
        LCOReranker(tiny_omni, device="cpu")  # the default tiny tokenizer has no single "yes"
