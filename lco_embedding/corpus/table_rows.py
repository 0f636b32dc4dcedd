"""A table's rows, read in a stream with the numbers that name them (a JSONL or CSV row's line, a Parquet row's
number), and the ids of its rows.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from typing import IO, Any

from lco_embedding.core.jsonl import jsonl_rows

__all__ = ["csv_ids", "csv_reader", "id_hash", "jsonl_ids", "parquet_ids", "parquet_rows", "record_id", "text_rows"]

_CSV_FIELD_LIMIT = 1 << 30


def csv_reader(f: IO[str], fmt: str) -> Any:
    """A CSV or TSV reader of ``f`` that takes fields of any size."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    return csv.reader(f, delimiter="\t" if fmt == "tsv" else ",")


def text_rows(path: str, fmt: str | None, skip: int) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """``(line number, row, problem)`` of a JSONL, CSV or TSV table's rows (blank lines are not rows); the first
    ``skip`` rows come as ``(line number, None, None)`` without being parsed. A CSV row that spans several lines has
    the number of its first line; the header is line 1."""
    if fmt == "jsonl":
        for count, (line_number, row, problem) in enumerate(jsonl_rows(path, skip), 1):
            if count <= skip:
                yield line_number, None, None
            elif problem is not None:
                yield line_number, {}, problem
            elif not isinstance(row, dict):
                yield line_number, {}, f"a JSON {type(row).__name__}, not an object."
            else:
                yield line_number, row, None
        return
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv_reader(f, fmt or "csv")
        header = next(reader, [])
        number = 0
        last = reader.line_num
        for values in reader:
            line_number, last = last + 1, reader.line_num
            if not values:
                continue
            number += 1
            if number <= skip:
                yield line_number, None, None
                continue
            if len(values) != len(header):
                yield line_number, {}, f"the row has {len(values)} fields, the header has {len(header)}."
                continue
            yield line_number, dict(zip(header, values, strict=True)), None


def parquet_rows(path: str, skip: int) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """``(row number, row, None)`` of a Parquet table's rows; the first ``skip`` rows come as ``(number, None, None)``,
    whole row groups before them unread."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, memory_map=True)
    number = 0
    for index in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(index).num_rows
        if number + size <= skip:
            for _ in range(size):  # a whole row group before the start: not read
                number += 1
                yield number, None, None
            continue
        for batch in parquet.iter_batches(batch_size=1024, row_groups=[index]):
            for row in batch.to_pylist():
                number += 1
                yield number, (row if number > skip else None), None


def record_id(raw: Any, default: str) -> str:
    """A record's id: the table's ``id`` value as text, or ``default`` (where it came from) when there is none."""
    return default if raw is None or raw == "" else str(raw)


def id_hash(value: str) -> int:
    """An id's 8-byte hash, as :func:`~.input_plan.duplicate_ids` compares them."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def csv_ids(argument: str, path: str, fmt: str) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every row of a CSV/TSV table, in order."""
    for line, row, _ in text_rows(path, fmt, 0):
        yield record_id((row or {}).get("id"), f"{argument}:{line}"), f"{path}:{line}"


def parquet_ids(argument: str, path: str) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every row of a Parquet table, in order, reading only its ``id`` column."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    number = 0
    if "id" not in parquet.schema_arrow.names:
        for number in range(1, parquet.metadata.num_rows + 1):
            yield f"{argument}:{number}", f"{path}:{number}"
        return
    for batch in parquet.iter_batches(batch_size=8192, columns=["id"]):
        for raw in batch.column(0).to_pylist():
            number += 1
            yield record_id(raw, f"{argument}:{number}"), f"{path}:{number}"


def jsonl_ids(argument: str, path: str) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every row of a JSONL table, in order."""
    for line, row, _ in text_rows(path, "jsonl", 0):
        yield record_id((row or {}).get("id"), f"{argument}:{line}"), f"{path}:{line}"
