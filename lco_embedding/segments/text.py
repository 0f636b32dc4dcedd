"""Cut a long text into overlapping windows of at most ``window`` tokens, cut at sentence ends where possible.

The whole text is tokenized once with offsets (a fast tokenizer is required); cuts are placed only at token
boundaries, i.e. character positions that no token straddles (a byte-level BPE splits an emoji or a CJK character
into several tokens that share one character span: no cut falls inside it). Each chosen window is then tokenized
on its own to count its tokens exactly, and shrunk if the merges at its edges make it longer than the budget.
Work is linear in the length of the text, plus one tokenizer call per window to verify it.

Does not know abbreviations ("Dr. Smith" counts as a sentence end), quotes spanning sentences, or languages whose
sentences end with other marks than ``. ! ? …`` (ASCII and full-width) or a newline. Does not work with slow
(Python) tokenizers, which give no offsets.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

__all__ = ["TextWindow", "text_windows"]

# A sentence ends at '.', '!', '?' or '…' (closing quotes and brackets may follow) followed by whitespace or the end
# of the text, and at the full-width '。', '！', '？' even without whitespace after them (CJK text has none).
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]»」』]*(?=\s|\Z)|[。！？]+[”’」』）]*")
_WHITESPACE = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")
# Share of the window's token span, at its end, searched for a sentence end or a word boundary to cut at.
_END_SEARCH = 0.3
# How many tokens away from the asked overlap a window may start to start on a word or sentence boundary.
_START_SLACK = 4

_PLAIN, _WORD, _SENTENCE = 0, 1, 2  # kinds of cut positions, best last


@dataclass(frozen=True)
class TextWindow:
    """One window of a text: ``source[start:end]``, which tokenizes on its own to ``tokens`` tokens.

    Attributes:
        start: Character offset in the source text where the window begins (inclusive).
        end: Character offset where it ends (exclusive).
        tokens: Number of tokens of ``text`` tokenized alone (``add_special_tokens=False``).
        text: ``source[start:end]``.
    """

    start: int
    end: int
    tokens: int
    text: str


def text_windows(text: str, tokenizer: Any, *, window: int = 300, overlap: int = 50) -> list[TextWindow]:
    """Cut ``text`` into windows of at most ``window`` tokens overlapping by about ``overlap`` tokens.

    Rules:

    * Tokens are those of ``tokenizer`` (a Hugging Face fast tokenizer), ``add_special_tokens=False``. The text is
      tokenized once with ``return_offsets_mapping=True``; windows begin and end at token boundaries. Each window is
      then tokenized alone: ``tokens`` is that count, and a window over ``window`` tokens (BPE merges can differ at
      a cut) has its end moved to an earlier boundary until it fits.
    * Windows never begin or end with whitespace, so none is whitespace only. A text of at most ``window`` tokens
      is one window: the whole text, less its leading and trailing whitespace.
    * Windows are in order, their starts and their ends strictly increase, and together they cover every
      non-whitespace character of the text. Every window holds text its predecessor did not.
    * A window ends, in order of preference, at the last sentence end in the last 30% of its token span (``.``,
      ``!``, ``?``, ``…`` followed by whitespace or the end of the text, optionally with closing quotes or brackets
      before it; ``。``, ``！``, ``？`` anywhere; any run of whitespace holding a newline), else at the last
      whitespace in that span, else where the budget runs out.
    * The next window starts ``overlap`` tokens before the previous cut. When the previous window ended at a
      sentence end, it starts at the sentence start nearest to that point among those from 4 tokens before it up
      to the cut; else at the word start (just after whitespace) nearest to it within 4 tokens; else exactly
      there. It always starts at least one token after the previous window's start, so the text is consumed even
      when ``overlap`` leaves no room, and late enough that its budget reaches text after the cut (a long run of
      whitespace after the cut is skipped, overlap or not); a window that read alone would still end where its
      predecessor ended is dropped and started one boundary later. With ``overlap > 0`` consecutive windows share
      at least one token whenever a non-whitespace token lies between the chosen start and the cut.
    * The only window that can exceed ``window`` tokens is one that cannot be cut smaller at any token boundary
      (a ``window`` smaller than the tokens of one character or of the first token read alone).

    Args:
        text: The text to cut.
        tokenizer: A ``transformers.PreTrainedTokenizerFast`` (e.g. ``AutoTokenizer.from_pretrained(path)``).
        window: Most tokens per window, a positive integer.
        overlap: Tokens shared by consecutive windows, ``0 <= overlap < window``.

    Returns:
        The windows, in order of the text.

    Raises:
        TypeError: If ``text`` is not a string or the tokenizer is not a fast one.
        ValueError: If ``text`` is empty or whitespace only, or ``window`` / ``overlap`` are out of range.

    Example:
        >>> from transformers import AutoTokenizer
        >>> tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
        >>> windows = text_windows("The cat sat. " * 60, tokenizer, window=100, overlap=10)
        >>> len(windows) > 1 and all(w.tokens <= 100 for w in windows)
        True
    """
    _check_arguments(text, tokenizer, window, overlap)
    return _Cutter(text, tokenizer, window, overlap).run()


def _check_arguments(text: Any, tokenizer: Any, window: Any, overlap: Any) -> None:
    """Raise on bad arguments, saying what is valid."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    if not text.strip():
        raise ValueError("text is empty or whitespace only; there is nothing to cut into windows.")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer (tokens per window), got {window!r}.")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < window:
        raise ValueError(f"overlap must be an integer with 0 <= overlap < window (= {window}), got {overlap!r}.")
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"tokenizer must be a Hugging Face fast tokenizer (PreTrainedTokenizerFast), which gives offsets; got "
            f"{type(tokenizer).__name__}. Load it with AutoTokenizer.from_pretrained(path, use_fast=True)."
        )


def _position_kinds(text: str) -> bytearray:
    """For each character position 0..len(text), the best kind of cut there: sentence end, word boundary or none.

    A position counts as a word boundary when it touches a run of whitespace (either side of it), and as a sentence
    end when it lies between a sentence end and the next non-whitespace character, or touches whitespace holding a
    newline. The start and the end of the text count as sentence ends.
    """
    kinds = bytearray(len(text) + 1)
    runs = list(_WHITESPACE.finditer(text))
    for run in runs:
        kinds[run.start() : run.end() + 1] = bytes([_WORD]) * (run.end() + 1 - run.start())
    for run in runs:
        if text.find("\n", run.start(), run.end()) >= 0:
            kinds[run.start() : run.end() + 1] = bytes([_SENTENCE]) * (run.end() + 1 - run.start())
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        after = _WHITESPACE.match(text, end)
        stop = after.end() if after else end
        kinds[end : stop + 1] = bytes([_SENTENCE]) * (stop + 1 - end)
    kinds[0] = kinds[len(text)] = _SENTENCE
    return kinds


class _Cutter:
    """The state of one cut: token boundaries of the text, their positions and kinds (see :func:`text_windows`)."""

    def __init__(self, text: str, tokenizer: Any, window: int, overlap: int) -> None:
        self.text, self.tokenizer, self.window, self.overlap = text, tokenizer, window, overlap
        offsets = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, verbose=False)[
            "offset_mapping"
        ]
        n = self.n = len(offsets)
        # Boundary k lies before token k (k = 0..n). It is a valid cut when no token before it ends after a token
        # from it on starts; its character position is the start of the next token (so characters the tokenizer
        # skipped, such as whitespace between WordPiece tokens, go with the window that ends there).
        suffix_start = [len(text)] * (n + 1)
        for k in range(n - 1, -1, -1):
            suffix_start[k] = min(offsets[k][0], suffix_start[k + 1])
        self.boundaries, self.positions = [0], [0]
        prefix_end = 0
        for k in range(1, n):
            prefix_end = max(prefix_end, offsets[k - 1][1])
            if prefix_end <= suffix_start[k]:
                self.boundaries.append(k)
                self.positions.append(suffix_start[k])
        self.boundaries.append(n)  # with no tokens at all (n = 0), boundary 0 twice: start and end of the text
        self.positions.append(len(text))
        kinds = _position_kinds(text)
        self.kinds = [kinds[p] for p in self.positions]  # kind of each valid boundary, by its index in the list

    def run(self) -> list[TextWindow]:
        """Choose and verify the windows one after another."""
        windows: list[TextWindow] = []
        start = self._settle(0)  # indices into self.boundaries
        ahead = start  # the boundary just before the first non-whitespace character after the previous window
        while start is not None and ahead is not None:
            end, piece = self._fit(start, ahead)
            if windows and piece.end <= windows[-1].end:
                # Nothing new in it (read alone, its start cost tokens that its end then lost): start later.
                start = self._settle(start + 1)
                continue
            windows.append(piece)
            ahead = self._settle(end) if self.boundaries[end] < self.n else None
            if ahead is not None:
                start = self._next_start(start, end, ahead)
        return windows

    def _settle(self, i: int) -> int | None:
        """Move boundary ``i`` forward to the last boundary before the next non-whitespace character (None: none)."""
        match = _NON_SPACE.search(self.text, self.positions[i])
        if match is None:
            return None
        return max(i, bisect_right(self.positions, match.start()) - 1)

    def _fit(self, start: int, ahead: int) -> tuple[int, TextWindow]:
        """The window from boundary ``start``: choose its end, then pull the end back until it tokenizes to fit."""
        limit = self.boundaries[start] + self.window
        while True:
            end = self._choose_end(start, limit, ahead)
            piece = self._window(start, end)
            if piece.tokens <= self.window or end == start + 1:
                return end, piece
            limit = min(limit, self.boundaries[end]) - (piece.tokens - self.window)

    def _choose_end(self, start: int, limit: int, ahead: int) -> int:
        """The boundary to end at, starting at ``start`` with tokens up to index ``limit`` (see the rules).

        Only boundaries after ``ahead`` (where the text not yet in a window begins) are candidates for a sentence or
        word cut, so that no window ends where its predecessor did for the sake of a nicer cut.
        """
        boundaries, kinds = self.boundaries, self.kinds
        if limit >= self.n:
            return len(boundaries) - 1
        last = bisect_right(boundaries, limit) - 1
        if last <= start:
            return start + 1  # nothing fits: the smallest window there is
        first = bisect_right(boundaries, limit - int(_END_SEARCH * (limit - boundaries[start])) - 1)
        word = None
        for i in range(last, max(first, start + 1, ahead + 1) - 1, -1):
            if kinds[i] == _SENTENCE:
                return i
            if word is None and kinds[i] == _WORD:
                word = i
        return last if word is None else word

    def _next_start(self, start: int, end: int, ahead: int) -> int:
        """The boundary the window after ``start..end`` starts at (see the rules).

        ``ahead`` is the boundary just before the next non-whitespace character after ``end``: the next window must
        be able to reach past it within its budget, or it would hold nothing new.
        """
        boundaries, kinds = self.boundaries, self.kinds
        target_token = boundaries[end] - self.overlap
        reach = min(bisect_right(boundaries, boundaries[ahead + 1] - self.window - 1), ahead)
        lowest = max(start + 1, reach)
        if lowest >= end:
            return self._settle(lowest) or lowest  # only whitespace lies between the cut and ``lowest``
        # Valid starts: after the previous start, before the cut (at it when no overlap is asked).
        highest = end - 1 if self.overlap > 0 else end
        target = min(max(bisect_right(boundaries, target_token) - 1, lowest), highest)

        def nearest(first: int, last: int, kind: int) -> int | None:
            """The boundary of at least ``kind`` in ``first..last`` nearest the target, whose text reaches the cut."""
            candidates = [i for i in range(max(first, lowest), min(last, highest) + 1) if kinds[i] >= kind]
            for i in sorted(candidates, key=lambda i: (abs(boundaries[i] - target_token), i)):
                settled = self._settle(i)
                if settled is not None and (settled < end or self.overlap == 0):
                    return settled
            return None

        slack_first = bisect_right(boundaries, target_token - _START_SLACK - 1)
        slack_last = bisect_right(boundaries, target_token + _START_SLACK) - 1
        chosen = None
        if kinds[end] == _SENTENCE:
            chosen = nearest(slack_first, highest, _SENTENCE)
        if chosen is None:
            chosen = nearest(slack_first, slack_last, _WORD)
        if chosen is None:
            chosen = self._settle(target)
        return ahead if chosen is None else chosen  # None cannot happen: non-whitespace follows the cut

    def _window(self, start: int, end: int) -> TextWindow:
        """The window between two boundaries, less surrounding whitespace, with its token count read alone."""
        raw = self.text[self.positions[start] : self.positions[end]]
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        begin = self.positions[start] + lead
        count = len(self.tokenizer(body, add_special_tokens=False, verbose=False)["input_ids"])
        return TextWindow(start=begin, end=begin + len(body), tokens=count, text=body)
