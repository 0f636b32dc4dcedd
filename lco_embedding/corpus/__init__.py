"""Corpus jobs: embed files, folders, tables and stdin into Parquet shards on disk, resumably, and search them.

The Python side of ``lco-embed encode``, ``search`` and ``index``:

* :func:`encode_corpus` — plan the inputs, resume or start the output folder, embed, commit shards exactly once;
* :func:`search_folder` — exact cosine search over the shards (or the approximate index);
* :func:`build_index` — the usearch index (``pip install 'lco-embedding[index]'``);
* :func:`read_embeddings` / :class:`OutputFolder` — read an output folder back.

Example:
    >>> from lco_embedding.corpus import encode_corpus, read_embeddings
    >>> encode_corpus(["photos/", "captions.jsonl"], "embeddings", model=model, show_progress_bar=False).embedded
    3
    >>> read_embeddings("embeddings").to_pandas()[["id", "modality"]].to_dict("list")
    {'id': ['photos/cat.png', 'c1', 'c2'], 'modality': ['image', 'text', 'text']}
"""

from lco_embedding.corpus.job import DEFAULT_MODEL, OutputMismatchError, RunSummary, encode_corpus
from lco_embedding.corpus.search import Hit, build_index, search_folder
from lco_embedding.corpus.store import OutputFolder, read_embeddings

__all__ = [
    "DEFAULT_MODEL",
    "Hit",
    "OutputFolder",
    "OutputMismatchError",
    "RunSummary",
    "build_index",
    "encode_corpus",
    "read_embeddings",
    "search_folder",
]
