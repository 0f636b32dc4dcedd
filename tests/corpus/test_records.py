"""Records: the extension table, folder walking, tables of every format, and resuming at any position."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lco_embedding.corpus.input_plan import extra_columns, file_modality, output_name, plan_inputs
from lco_embedding.corpus.records import iter_records


@pytest.fixture
def tree(tmp_path, media):
    """A folder with every modality, a subfolder, hidden and unknown files, and tables next to it."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name, target in (("b.png", "png"), ("a.wav", "wav"), ("sub/c.mp4", "mp4")):
        (root / name).write_bytes(open(media[target], "rb").read())
    (root / "note.txt").write_text("a note about cats", encoding="utf-8")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "readme.docx").write_bytes(b"%PDF")
    (root / "rows.jsonl").write_text("{}\n")  # a table inside a folder is not read
    (root / ".hidden" / "x.png").write_bytes(b"")
    (root / ".DS_Store").write_bytes(b"")
    return root


def test_the_extension_table():
    assert [file_modality(n) for n in ("a.TXT", "b.md", "c.JPeG", "d.opus", "e.webm", "f.docx", "g")] == [
        "text",
        "text",
        "image",
        "audio",
        "video",
        None,
        None,
    ]


def test_a_folder_is_walked_in_sorted_order_and_files_no_modality_reads_fail_with_the_reason(tree):
    (spec,) = plan_inputs([str(tree)])
    assert spec.kind == "folder" and spec.items == 7
    assert spec.ignored == {".docx": 1, ".jsonl": 1} and len(spec.skipped) == 2
    records = list(iter_records([spec]))
    relative = [os.path.relpath(r.source, tree) for r in records]
    assert relative == ["a.wav", "b.png", "latin1.txt", "note.txt", "readme.docx", "rows.jsonl", "sub/c.mp4"]
    assert [r.modality for r in records] == ["audio", "image", "text", "text", "unknown", "unknown", "video"]
    assert [r.position for r in records] == [0, 1, 2, 3, 4, 5, 6]
    assert records[0].item == {"audio": str(tree / "a.wav")}
    assert records[3].item == {"text": "a note about cats"}
    assert records[2].item is None and "UTF-8" in records[2].error
    assert records[4].item is None and "no modality reads .docx files" in records[4].error
    assert records[5].item is None and "a table inside a folder is not read" in records[5].error
    assert records[6].id == os.path.join(str(tree), "sub", "c.mp4")


def test_the_folder_fingerprint_changes_when_files_come_or_go(tree):
    before = plan_inputs([str(tree)])[0].fingerprint
    assert plan_inputs([str(tree)])[0].fingerprint == before
    (tree / "new.png").write_bytes(b"x")
    assert plan_inputs([str(tree)])[0].fingerprint != before


def test_jsonl_rows_ids_extras_relative_paths_and_bad_lines(tmp_path, media):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "cat.png").write_bytes(open(media["png"], "rb").read())
    lines = [
        json.dumps({"id": 7, "text": "hello", "lang": "en", "score": 1, "tags": ["a"]}),
        json.dumps({"text": "caption", "image": "img/cat.png", "lang": "fr", "score": 2.5}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "x", "lang": "de"}),
        json.dumps({"id": "y", "image": "img/missing.png"}),
        json.dumps({"id": "z", "text": "", "audio": "https://example.com/a.wav", "source": "wiki"}),
    ]
    table = tmp_path / "rows.jsonl"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (spec,) = plan_inputs([str(table)])
    assert spec.items == 7  # the blank line is not a row
    assert spec.columns == {"lang": "string", "score": "double", "tags": "json", "source": "string"}
    records = list(iter_records([spec]))
    # rows are named by their line number everywhere (the blank line 3 is not a row, but keeps its number)
    assert [r.id for r in records] == ["7", f"{table}:2", f"{table}:4", f"{table}:5", "x", "y", "z"]
    assert [r.source.rsplit(":", 1)[1] for r in records] == ["1", "2", "4", "5", "6", "7", "8"]
    assert records[0].item == {"text": "hello"} and records[0].extras["score"] == 1
    assert records[1].modality == "mixed"
    assert records[1].item == {"text": "caption", "image": str(tmp_path / "img" / "cat.png")}
    assert records[2].error.startswith("not valid JSON")
    assert "JSON list, not an object" in records[3].error
    assert "no text, image, audio, video or pdf value" in records[4].error
    assert "file not found" in records[5].error and f"resolved against {str(tmp_path)!r}" in records[5].error
    assert records[6].item == {"audio": "https://example.com/a.wav"} and records[6].modality == "audio"
    assert output_name("source") == "input_source" and output_name("lang") == "lang"


def test_csv_tsv_and_parquet_tables(tmp_path, media):
    png = open(media["png"], "rb").read()
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text('id,text,image,note\n1,"a, quoted\nline",,n1\n2,,' + media["png"] + ",\n3,only\n")
    tsv_file = tmp_path / "rows.tsv"
    tsv_file.write_text("text\tkind\nfirst\tx\n")
    parquet_file = tmp_path / "rows.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [10, 11, 12],
                "image": [png, None, None],
                "audio": [None, {"bytes": None, "path": media["wav"]}, None],
                "text": [None, "with audio", "plain"],
                "when": pa.array([1, 2, 3], pa.timestamp("s")),
                "n": pa.array([1, 2, 3], pa.int32()),
            }
        ),
        parquet_file,
        row_group_size=1,
    )
    specs = plan_inputs([str(csv_file), str(tsv_file), str(parquet_file)])
    assert [s.items for s in specs] == [3, 1, 3]
    assert specs[0].columns == {"note": "string"} and specs[1].columns == {"kind": "string"}
    assert specs[2].columns == {"when": "json", "n": "int64"}
    records = list(iter_records(specs))
    assert records[0].item == {"text": "a, quoted\nline"} and records[0].extras == {"note": "n1"}
    assert records[1].item == {"image": media["png"]} and records[1].extras == {"note": ""}
    assert "has 2 fields, the header has 4" in records[2].error
    assert [r.source.rsplit(":", 1)[1] for r in records[:3]] == ["2", "4", "5"]  # the CSV's line numbers
    assert records[3].item == {"text": "first"} and records[3].extras == {"kind": "x"}
    assert records[4].item == {"image": png} and records[4].id == "10"
    assert records[5].item == {"text": "with audio", "audio": media["wav"]} and records[5].modality == "mixed"
    assert [r.position for r in records] == list(range(7))
    assert extra_columns(specs) == {"note": "string", "kind": "string", "when": "json", "n": "int64"}


def test_stdin_lines(tmp_path):
    import io

    (spec,) = plan_inputs(["-"])
    records = list(iter_records([spec], stdin=io.StringIO("one\n\ntwo\r\n")))
    assert [r.item for r in records] == [{"text": "one"}, {"text": ""}, {"text": "two"}]
    assert [r.id for r in records] == ["stdin:1", "stdin:2", "stdin:3"]
    with pytest.raises(ValueError, match="only once"):
        plan_inputs(["-", "-"])


def test_resuming_at_any_position_gives_the_rest_of_the_stream(tree, tmp_path, media):
    import io

    table = tmp_path / "t.jsonl"
    table.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(5)))
    parquet_file = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": [f"p{i}" for i in range(7)]}), parquet_file, row_group_size=2)
    arguments = [str(tree), str(table), "-", str(parquet_file)]
    specs = plan_inputs(arguments)
    lines = "a\nb\nc\n"
    full = [(r.position, r.source, r.item) for r in iter_records(specs, stdin=io.StringIO(lines))]
    assert [p for p, _, _ in full] == list(range(7 + 5 + 3 + 7))
    for start in range(len(full) + 1):
        rest = [(r.position, r.source, r.item) for r in iter_records(specs, start=start, stdin=io.StringIO(lines))]
        assert rest == full[start:], start


def test_bad_inputs_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        plan_inputs([str(tmp_path / "nope")])
    (tmp_path / "x.docx").write_bytes(b"")
    with pytest.raises(ValueError, match="extension lco-embed does not read"):
        plan_inputs([str(tmp_path / "x.docx")])
    (tmp_path / "t.csv").write_text("name,value\na,1\n")
    with pytest.raises(ValueError, match="no column named text, image, audio, video or pdf"):
        plan_inputs([str(tmp_path / "t.csv")])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="needs a header row"):
        plan_inputs([str(tmp_path / "empty.csv")])
    (tmp_path / "latin1.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        plan_inputs([str(tmp_path / "latin1.csv")])


def test_jsonl_lines_are_split_and_decoded_the_same_way_in_both_passes(tmp_path):
    table = tmp_path / "odd.jsonl"
    # a lone carriage return is not a line break (text mode would make two rows of line 1), then bad UTF-8
    table.write_bytes(b'{"text": "a"}\r{"text": "b"}\r\n' + b'{"text": "caf\xe9"}\n' + b'{"text": "last"}')
    (spec,) = plan_inputs([str(table)])
    records = list(iter_records([spec]))
    assert spec.items == len(records) == 3
    assert records[0].error.startswith("not valid JSON") and records[0].source.endswith(":1")
    assert records[1].error.startswith("not valid JSON") and "utf-8" in records[1].error
    assert records[1].source.endswith(":2") and records[2].item == {"text": "last"}


def test_duplicate_ids_are_found_across_inputs_with_where_they_are(tmp_path):
    from lco_embedding.corpus.input_plan import duplicate_ids

    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": "x", "text": "1"}\n{"text": "2"}\n{"id": 7, "text": "3"}\n')
    csv_file = tmp_path / "b.csv"
    csv_file.write_text("id,text\nx,4\n7,5\ny,6\n")
    parquet_file = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["y", None], "text": ["7", "8"]}), parquet_file)
    specs = plan_inputs([str(jsonl), str(csv_file), str(parquet_file)])
    count, examples = duplicate_ids(specs)
    assert count == 3
    assert dict(examples) == {
        "x": [f"{jsonl}:1", f"{csv_file}:2"],
        "7": [f"{jsonl}:3", f"{csv_file}:3"],
        "y": [f"{csv_file}:4", f"{parquet_file}:1"],
    }
    assert duplicate_ids(plan_inputs([str(jsonl)])) == (0, [])


def test_allow_duplicate_ids_keeps_them_and_counts_them(tmp_path, embedder):
    from lco_embedding.corpus.job import encode_corpus

    table = tmp_path / "dup.jsonl"
    table.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(ValueError, match="repeat an id"):
        encode_corpus([str(table)], tmp_path / "refused", model=embedder, show_progress_bar=False)
    summary = encode_corpus(
        [str(table)], tmp_path / "kept", model=embedder, allow_duplicate_ids=True, show_progress_bar=False
    )
    assert summary.embedded == 2 and summary.duplicate_ids == 1


def test_folders_with_fifos_and_dangling_links_are_planned_without_opening_them(tmp_path):
    import os

    (tmp_path / "ok.txt").write_text("hello")
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nothing.png")
    (spec,) = plan_inputs([str(tmp_path)])
    records = list(iter_records([spec]))  # would block on the FIFO, or raise on the link, before
    assert [r.id.rsplit("/", 1)[1] for r in records] == ["gone.png", "ok.txt", "pipe.txt"]
    assert "broken symbolic link" in records[0].error and records[1].item == {"text": "hello"}
    assert "is a FIFO" in records[2].error
    with pytest.raises(ValueError, match="is a FIFO"):
        plan_inputs([str(tmp_path / "pipe.txt")])
