"""A Parquet folder's approximate index: a usearch HNSW graph in ``DIR/index.usearch``.

usearch (``pip install 'lco-embedding[index]'``) was chosen over faiss because its wheel is small and has no
BLAS/OpenMP of its own to clash with torch's, it stores vectors as float16 or int8 inside the index, its files are
memory-mapped on load (``view=True``) so a search opens a large index without reading it into memory, and its 64-bit
keys are our row numbers. A search uses it only when it covers every committed row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.corpus.visibility import visible

__all__ = ["INDEX_DTYPES", "build_folder_index", "index_is_current", "search_index"]

INDEX_DTYPES = ("f32", "f16", "i8")


def index_is_current(folder: Any) -> bool:
    """True when the folder has an index that covers every committed row."""
    index = folder.manifest.get("index")
    return (
        bool(index)
        and index.get("file") is not None
        and index.get("rows") == visible(folder.manifest).token
        and (folder.path / index["file"]).is_file()
    )


def search_index(folder: Any, queries: np.ndarray, k: int) -> list[list[tuple[float, int]]]:
    """``(cosine, row)`` of the ``k`` nearest rows of each (normalised) query, through the index."""
    from lco_embedding.core.require import require

    require("usearch", "index")
    from usearch.index import Index

    index = Index.restore(str(folder.path / folder.manifest["index"]["file"]), view=True)
    if len(index) == 0:
        return [[] for _ in queries]
    results = []
    for query in queries:
        matches = index.search(query, min(k, len(index)))
        results.append([(1.0 - float(d), int(key)) for key, d in zip(matches.keys, matches.distances, strict=True)])
    return results


def build_folder_index(folder: Any, dtype: str, connectivity: int | None, show_progress_bar: bool) -> dict[str, Any]:
    """Write ``DIR/index.usearch`` over every committed row; the manifest's ``index`` entry describing it."""
    from tqdm.auto import tqdm

    from lco_embedding.core.require import require

    require("usearch", "index")
    from usearch.index import Index

    if dtype not in INDEX_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(INDEX_DTYPES)}, got {dtype!r}.")
    manifest = folder.manifest
    kwargs = {"connectivity": connectivity} if connectivity else {}
    index = Index(ndim=manifest["dimension"], metric="cos", dtype=dtype, **kwargs)
    with tqdm(total=manifest["counts"]["embedded"], unit="row", desc="Indexing", disable=not show_progress_bar) as bar:
        for rows, vectors, _ in folder.iter_embeddings():
            index.add(rows.astype(np.uint64), vectors)
            bar.update(len(vectors))
    target: Path = folder.path / folder.index_file
    temporary = folder.path / f".{folder.index_file}.tmp"
    index.save(str(temporary))
    os.replace(temporary, target)
    entry = {"file": folder.index_file, "rows": visible(manifest).token, "dtype": dtype, "metric": "cos", **kwargs}
    return {**entry, "size": len(index)}
