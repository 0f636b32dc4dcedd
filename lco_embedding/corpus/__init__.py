"""Corpus jobs: embed files, folders, tables and stdin into Parquet shards on disk, resumably, and search them.

The Python side of ``lco-embed encode``, ``search`` and ``index``:

* :func:`encode_corpus` — plan the inputs, resume or start the output folder, embed, commit shards exactly once;
* :func:`search_folder` — exact cosine search over the shards (or the approximate index);
* :func:`build_index` — the usearch index (``pip install 'lco-embedding[index]'``);
* :func:`read_embeddings` / :class:`OutputFolder` — read an output folder back.

Example:
    >>> from lco_embedding.corpus import encode_corpus, read_embeddings  # doctest: +SKIP
    >>> encode_corpus(["photos/", "captions.jsonl"], "embeddings")  # doctest: +SKIP
    >>> read_embeddings("embeddings").to_pandas()  # doctest: +SKIP
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
