"""Corpus jobs: embed files, folders, tables and stdin into Parquet shards, a LanceDB table or a Milvus collection,
resumably, and search them.

The Python side of ``lco-embed encode``, ``search``, ``index`` and ``export``:

* :func:`encode_corpus` — plan the inputs, resume or start the output, embed, commit shards exactly once;
* :func:`search_folder` / :func:`search_per_modality` — cosine search, filtered, grouped or calibrated per modality;
* :func:`build_index` — the store's approximate index and the per-modality calibration;
* :func:`export_folder` — copy a Parquet folder into LanceDB or Milvus;
* :func:`open_store` / :func:`read_embeddings` / :class:`OutputFolder` — read an output back.

Example:
    >>> from lco_embedding.corpus import encode_corpus, read_embeddings
    >>> encode_corpus(["photos/", "captions.jsonl"], "embeddings", model=model, show_progress_bar=False).embedded
    3
    >>> read_embeddings("embeddings").to_pandas()[["id", "modality"]].to_dict("list")
    {'id': ['photos/cat.png', 'c1', 'c2'], 'modality': ['image', 'text', 'text']}
"""

from lco_embedding.corpus.export import export_folder
from lco_embedding.corpus.job import encode_corpus
from lco_embedding.corpus.job_options import DEFAULT_MODEL, CorpusOptions, ModelSpec
from lco_embedding.corpus.parquet_store import OutputFolder
from lco_embedding.corpus.run_identity import OutputMismatchError
from lco_embedding.corpus.run_summary import RunSummary
from lco_embedding.corpus.search import Hit, build_index, search_folder, search_per_modality
from lco_embedding.corpus.stores import open_store, read_embeddings

__all__ = [
    "DEFAULT_MODEL",
    "CorpusOptions",
    "ModelSpec",
    "Hit",
    "OutputFolder",
    "OutputMismatchError",
    "RunSummary",
    "build_index",
    "encode_corpus",
    "export_folder",
    "open_store",
    "read_embeddings",
    "search_folder",
    "search_per_modality",
]
