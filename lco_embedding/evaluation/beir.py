"""A retrieval dataset in the BEIR layout, with rows of any modality.

::

    DATA/corpus.jsonl     {"_id": "d1", "title": "...", "text": "..."}   or {"_id": "d2", "image": "img/cat.jpg"},
                          {"_id": "d3", "text": "a caption", "image": "img/dog.png"}, "audio", "video" alike
    DATA/queries.jsonl    {"_id": "q1", "text": "..."}                   or media, as the corpus
    DATA/qrels/test.tsv   query-id <tab> corpus-id <tab> score           (BEIR's header line is skipped)

Media are paths relative to ``DATA`` (or absolute, or URLs). A corpus row's ``title`` is put before its ``text``
with a space, as BEIR does (a row with a title and an empty text is the title). Rows keep their other fields (they
reach the corpus job as extra columns). A qrels file's first line is a header when it names its columns
(``query-id corpus-id score``, or ``qid``/``docid``/``rel``-style names), not because it fails to parse: a first
judgement with a bad score is an error, never skipped. Scores are integers (``pytrec_eval``'s graded relevance).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lco_embedding.core.jsonl import read_jsonl
from lco_embedding.core.modalities import (
    DOCUMENT_KEYS,
    MEDIA_MODALITIES,
    MODALITIES,
    PDF,
    item_modality,
    page_modalities,
)

__all__ = ["Dataset", "load_dataset", "row_item", "row_modality"]


@dataclass
class Dataset:
    """A loaded dataset: corpus rows and queries (``_id`` -> row, media paths made absolute) and relevance
    judgements (query id -> {corpus id -> score})."""

    folder: Path
    corpus: dict[str, dict[str, Any]]
    queries: dict[str, dict[str, Any]]
    qrels: dict[str, dict[str, int]]
    split: str = "test"
    problems: list[str] = field(default_factory=list)
    query_lines: dict[str, int] = field(default_factory=dict)
    """Each query's line in ``queries.jsonl``, for messages."""


def _rows(path: Path, folder: Path, what: str) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The rows of ``path`` by id (media resolved, title joined) and each id's line number."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: a BEIR dataset folder holds corpus.jsonl, queries.jsonl and qrels/."
        )
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    for number, row in read_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("_id"), str | int):
            raise ValueError(f'{path}, line {number}: a {what} row is an object with an "_id".')
        key = str(row["_id"])
        if key in rows:
            raise ValueError(f"{path}, line {number}: the {what} id {key!r} is given twice.")
        problem = _problem(row)
        if problem:
            raise ValueError(f"{path}, line {number}: {what} {key!r} {problem}")
        rows[key] = _resolved(row, folder)
        lines[key] = number
    if not rows:
        example = '{"_id": "1", "text": "..."}'
        raise ValueError(f"{path} has no rows: give one JSON object per line, e.g. {example}.")
    return rows, lines


def _problem(row: dict[str, Any]) -> str | None:
    """What keeps a row from being an item: a field of the wrong type, or no content at all."""
    for name in ("title", *MODALITIES, PDF):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return f"has a {name!r} that is a {type(value).__name__}, not a string (a text, or a path or URL)."
    if row.get(PDF) and (isinstance(row.get("page"), bool) or not isinstance(row.get("page"), int)):
        return "has a 'pdf' without a 'page' number (pages are numbered from 1)."
    if not any(row.get(m) for m in (*MODALITIES, PDF)) and not (row.get("title") or "").strip():
        return "has none of 'text' (or 'title'), 'image', 'audio', 'video', 'pdf'."
    return None


def _resolved(row: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The row with media paths relative to the dataset made absolute, and its title before its text."""
    out = dict(row)
    for modality in (*MEDIA_MODALITIES, PDF):
        value = out.get(modality)
        if isinstance(value, str) and value and "://" not in value and not value.startswith("data:"):
            out[modality] = str(folder / value) if not os.path.isabs(value) else value
    title = out.pop("title", None)
    if isinstance(title, str) and title.strip():
        out["text"] = f"{title} {out['text']}" if out.get("text") else title
    return out


def row_item(row: dict[str, Any]) -> dict[str, Any]:
    """The ``encode`` item of a row: its modalities, or a page of a PDF (``pdf``, ``page``, ``pdf_text``) with them."""
    item = {m: row[m] for m in MODALITIES if row.get(m)}
    if row.get(PDF):
        item.update({key: row[key] for key in DOCUMENT_KEYS if row.get(key) is not None})
    return item


def row_modality(row: dict[str, Any]) -> str:
    """A row's modality as the corpus job names it: its one modality, or ``mixed`` (a page is an image, and with
    ``pdf_text`` also a text)."""
    return item_modality([*(m for m in MODALITIES if row.get(m)), *page_modalities(row)])


_HEADER_NAMES = (
    {"query-id", "query_id", "queryid", "qid", "query"},
    {"corpus-id", "corpus_id", "corpusid", "doc-id", "doc_id", "docid", "document-id", "document_id", "document"},
    {"score", "relevance", "rel", "label", "grade"},
)


def _is_header(fields: list[str]) -> bool:
    """True when a first line names the columns (BEIR's ``query-id corpus-id score``, and the usual variants)."""
    names = [field.strip().lower() for field in fields]
    return len(names) >= 3 and all(
        name in known for name, known in zip(names[:2] + names[-1:], _HEADER_NAMES, strict=True)
    )


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the relevance judgements (query-id, corpus-id, score).")
    judged: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for number, fields in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not fields or (number == 1 and _is_header(fields)):
                continue  # an empty line, or the header
            if len(fields) < 3:
                raise ValueError(f"{path}, line {number}: expected query-id, corpus-id and score, tab-separated.")
            query, document, score = fields[0], fields[1], fields[-1]
            try:
                judged.setdefault(query, {})[document] = int(score)
            except ValueError as e:
                header = " (a header line names its columns: query-id, corpus-id, score)" if number == 1 else ""
                raise ValueError(
                    f"{path}, line {number}: the score {score!r} is not an integer (graded relevance: 0, 1, 2, ...)"
                    f"{header}."
                ) from e
    if not any(score > 0 for scores in judged.values() for score in scores.values()):
        raise ValueError(
            f"{path} has no judgement with a score above 0 ({sum(map(len, judged.values()))} judgements): no query "
            "has a relevant document, so there is nothing to evaluate."
        )
    return judged


def load_dataset(folder: str | os.PathLike[str], split: str = "test") -> Dataset:
    """Read a BEIR-layout dataset (see the module).

    Raises:
        FileNotFoundError: A file of the layout is missing.
        ValueError: A malformed row or judgement, or judgements naming ids the dataset does not have.
    """
    root = Path(folder)
    corpus, _ = _rows(root / "corpus.jsonl", root, "corpus")
    queries, query_lines = _rows(root / "queries.jsonl", root, "query")
    qrels = _qrels(root / "qrels" / f"{split}.tsv")
    unknown_queries = sorted(set(qrels) - set(queries))
    unknown_docs = sorted({d for judged in qrels.values() for d in judged} - set(corpus))
    if unknown_queries or unknown_docs:
        raise ValueError(
            f"qrels/{split}.tsv names ids the dataset does not have: queries {unknown_queries[:5]}, corpus "
            f"{unknown_docs[:5]}."
        )
    return Dataset(root, corpus, queries, qrels, split, query_lines=query_lines)
