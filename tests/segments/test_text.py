"""Text windows: budgets exact when each window is tokenized alone, full coverage, overlaps as asked, cuts at
sentence ends, on the tiny checkpoint's byte-level BPE and on a WordPiece tokenizer (gaps between tokens)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lco_embedding.segments.text import TextWindow, text_windows
from lco_embedding.testing import build_tiny_checkpoint

_WORDPIECE_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A cat sat on the mat, and a dog slept in the fog!",
    "Playing games is fun? Reading books is better; writing them is best.",
    "Sentence number one is here. Sentence number two is there.",
]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    """The tiny checkpoint's tokenizer: byte-level BPE, offsets include the leading space ('Ġword')."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(build_tiny_checkpoint(tmp_path_factory.mktemp("ck"), "omni"))


@pytest.fixture(scope="module")
def wordpiece():
    """A WordPiece tokenizer trained on a few sentences: whitespace belongs to no token, words split into '##'."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(
        _WORDPIECE_CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]"], show_progress=False)
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")


@pytest.fixture(scope="module", params=["bpe", "wordpiece"])
def tokenizer(request):
    return request.getfixturevalue(request.param)


def _count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _check(text: str, tokenizer, windows: list[TextWindow], window: int) -> None:
    """The invariants every cut keeps (see text_windows' rules)."""
    assert windows
    for piece in windows:
        assert piece.text == text[piece.start : piece.end]
        assert piece.text and piece.text == piece.text.strip()
        assert piece.tokens == _count(tokenizer, piece.text)
        assert piece.tokens <= window, piece
    for before, after in pairwise(windows):
        assert after.start > before.start
        assert after.end > before.end
        assert text[before.end : after.start].strip() == ""  # no non-space character falls between them
    assert text[: windows[0].start].strip() == "" and text[windows[-1].end :].strip() == ""


def _token_overlap(text: str, tokenizer, before: TextWindow, after: TextWindow) -> int:
    """Tokens of the whole text's tokenization with a non-space character in both windows."""
    offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    return sum(
        1
        for s, e in offsets
        if text[max(s, after.start) : min(e, before.end)].strip()  # the token's characters shared by both
    )


def _sentences(count: int) -> str:
    names = ["cat", "dog", "fox", "mat", "fog"]
    return " ".join(f"The {names[i % 5]} {i} sat on it." for i in range(count))


def test_short_text_is_one_window(tokenizer):
    text = "The cat sat on the mat."
    assert text_windows(text, tokenizer, window=100, overlap=10) == [
        TextWindow(0, len(text), _count(tokenizer, text), text)
    ]
    padded = "\n\n  " + text + " \t\n"
    [piece] = text_windows(padded, tokenizer, window=100, overlap=10)
    assert (piece.start, piece.end, piece.text) == (4, 4 + len(text), text)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \u3000\n"])
def test_blank_text_raises(bpe, text):
    with pytest.raises(ValueError, match="whitespace only"):
        text_windows(text, bpe)


@pytest.mark.parametrize(
    ("window", "overlap", "named"),
    [(0, 0, "window"), (-3, 0, "window"), (2.5, 0, "window"), (True, 0, "window"), ("8", 0, "window")]
    + [(10, -1, "overlap"), (10, 10, "overlap"), (10, 11, "overlap"), (10, 2.0, "overlap"), (10, None, "overlap")],
)
def test_bad_window_or_overlap_raises(bpe, window, overlap, named):
    with pytest.raises(ValueError, match=f"^{named} must be"):
        text_windows("some text", bpe, window=window, overlap=overlap)


def test_non_fast_tokenizer_and_non_text_raise(bpe):
    with pytest.raises(TypeError, match="fast tokenizer"):
        text_windows("some text", object())
    with pytest.raises(TypeError, match="text must be a str"):
        text_windows(b"some text", bpe)


def test_many_sentences_cut_at_sentence_ends_with_the_asked_overlap(tokenizer):
    text = _sentences(120)
    window, overlap = 60, 15
    windows = text_windows(text, tokenizer, window=window, overlap=overlap)
    _check(text, tokenizer, windows, window)
    assert len(windows) > 10
    for piece in windows[:-1]:
        assert piece.text.endswith(".")
    for before, after in pairwise(windows):
        assert 1 <= _token_overlap(text, tokenizer, before, after) <= overlap + 6
        assert after.start < before.end
        assert text[after.start - 2 : after.start] == ". " and text[after.start] == "T"  # a sentence start


def test_no_punctuation_cuts_at_word_boundaries(tokenizer):
    text = " ".join(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"] * 80)
    window, overlap = 40, 8
    windows = text_windows(text, tokenizer, window=window, overlap=overlap)
    _check(text, tokenizer, windows, window)
    for before, after in pairwise(windows):
        assert text[before.end] == " " and text[after.start - 1] == " "  # whole words on both sides
        assert 1 <= _token_overlap(text, tokenizer, before, after) <= overlap + 6


def test_zero_overlap_windows_are_adjacent(tokenizer):
    text = _sentences(40)
    windows = text_windows(text, tokenizer, window=50, overlap=0)
    _check(text, tokenizer, windows, 50)
    for before, after in pairwise(windows):
        assert after.start >= before.end


def test_large_overlap_still_progresses(tokenizer):
    text = _sentences(15)
    windows = text_windows(text, tokenizer, window=20, overlap=19)
    _check(text, tokenizer, windows, 20)


def test_newlines_are_sentence_ends_and_blank_runs_are_skipped(tokenizer):
    text = "\n".join(f"row {i} here" for i in range(100)) + "\n\n\n\n" + "\n" * 500 + "the end"
    windows = text_windows(text, tokenizer, window=30, overlap=5)
    _check(text, tokenizer, windows, 30)
    for piece in windows[:-1]:
        assert piece.end == len(text) or text[piece.end] == "\n"
    assert windows[-1].text.endswith("the end")


def test_long_words_cut_inside_words_and_still_fit(wordpiece):
    # WordPiece tokenizes a word's tail alone differently ("##ing" -> "i ##n ##g"): windows are recounted alone.
    text = " ".join(["playingreadingwriting" * 4] * 10)  # under WordPiece's 100 characters per word
    windows = text_windows(text, wordpiece, window=16, overlap=4)
    _check(text, wordpiece, windows, 16)
    assert len(windows) > 5


def test_cjk_text(tokenizer):
    text = "日本語の文章です。次の文はもっと長いです！これは質問ですか？" * 30
    windows = text_windows(text, tokenizer, window=40, overlap=8)
    _check(text, tokenizer, windows, 40)
    assert len(windows) > 3


def test_emoji_never_split_even_when_alone_they_exceed_the_window(bpe):
    # Byte-level BPE spends 4 tokens on each emoji; with window=2 no cut can fit, so each window is one emoji.
    text = "🙂😀🎉"
    windows = text_windows(text, bpe, window=2, overlap=1)
    assert [w.text for w in windows] == ["🙂", "😀", "🎉"]
    assert all(w.tokens == 4 for w in windows)
    mixed = "hi 🙂 there 😀 ok. " * 50
    _check(mixed, bpe, text_windows(mixed, bpe, window=24, overlap=6), 24)


class _CountingTokenizer:
    """A real fast tokenizer that counts the whole-text offset calls made through it."""

    is_fast = True

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.offset_calls, self.calls = tokenizer, 0, 0

    def __call__(self, text, **kwargs):
        self.calls += 1
        self.offset_calls += bool(kwargs.get("return_offsets_mapping"))
        return self.tokenizer(text, **kwargs)


def test_200k_characters_with_one_offsets_call(bpe):
    paragraph = _sentences(8) + " Is it long? Yes… Quite long!\n\n" + "word " * 30 + "\n"
    text = (paragraph * (200_000 // len(paragraph) + 1))[:200_000]
    counting = _CountingTokenizer(bpe)
    windows = text_windows(text, counting, window=300, overlap=50)
    _check(text, bpe, windows, 300)
    assert counting.offset_calls == 1
    assert counting.calls < 2 * len(windows) + 1  # one count per window, rarely a second after a shrink
    assert all(w.tokens > 150 for w in windows[:-1])  # cuts near the budget, not scattered small windows


_PIECES = st.sampled_from(
    ["cat", "dog", "the", "assistant", "Qwen", "xyzzy", "a", "0123", "naïve", "日本", "語"]
    + [".", "!", "?", ",", "…", "。", '."', "3.14", "e.g."]
    + [" ", " ", " ", "  ", "\n", "\n\n", "\t", " \n "]
)


@settings(max_examples=30, deadline=None)
@given(
    text=st.lists(_PIECES, min_size=1, max_size=120).map("".join).filter(str.strip),
    window=st.integers(10, 16),
    overlap_share=st.floats(0, 0.95),
)
def test_random_texts_keep_every_invariant(tokenizer, text, window, overlap_share):
    overlap = int(overlap_share * window)
    windows = text_windows(text, tokenizer, window=window, overlap=overlap)
    _check(text, tokenizer, windows, window)
    if _count(tokenizer, text) <= window:
        assert len(windows) == 1


@settings(max_examples=30, deadline=None)
@given(text=st.lists(_PIECES, min_size=1, max_size=120).map("".join).filter(str.strip))
def test_random_texts_window_12_overlap_3(bpe, text):
    windows = text_windows(text, bpe, window=12, overlap=3)
    _check(text, bpe, windows, 12)
