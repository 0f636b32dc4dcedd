"""The ``lco-embed`` command group."""

from __future__ import annotations

from typing import Any

import click

from lco_embedding import __version__
from lco_embedding.cli.common import verbosity_options

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lco-embed")
@verbosity_options
def cli() -> None:
    """Embed text, images, audio, video and mixed items with LCO-Embedding models, and search them.

    \b
    lco-embed demo                               the main job on a small sample set, offline too
    lco-embed encode photos/ captions.jsonl --out emb
    lco-embed search emb "a cat on a mat" -k 5
    lco-embed search emb --image query.jpg --only text
    lco-embed search emb "a cat" --calibrate     fair ranking across modalities
    lco-embed index emb                          approximate index for millions of rows
    lco-embed encode photos/ --out lancedb://db/corpus   or milvus://corpus.db/corpus (docs/stores.md)
    lco-embed export emb lancedb://db/corpus     copy a folder into LanceDB or Milvus
    lco-embed eval my-data --out my-eval         retrieval metrics per query -> corpus modality (BEIR layout)
    lco-embed serve --port 8000                  OpenAI- and Cohere-compatible embeddings, dynamic batching
    lco-embed analyze pairs.jsonl -m MODEL --out analysis   layer-wise anisotropy and alignment, with figures
    lco-embed train pairs.jsonl -m MODEL --out run   LoRA contrastive refinement (docs/training.md)
    lco-embed merge run/adapter --out my-model   a full checkpoint, loadable by LCOEmbedder
    lco-embed info --model LCO-Embedding/LCO-Embedding-Omni-7B

    -v / -q work before or after the command's name.
    """


def _register() -> None:
    from lco_embedding.cli.analyze import analyze
    from lco_embedding.cli.demo import demo
    from lco_embedding.cli.encode import encode
    from lco_embedding.cli.eval import evaluate
    from lco_embedding.cli.info import info
    from lco_embedding.cli.search import export, index, search
    from lco_embedding.cli.serve import serve
    from lco_embedding.cli.train import merge, train

    for command in (encode, search, index, export, evaluate, serve, analyze, train, merge, info, demo):
        cli.add_command(verbosity_options(command))


_register()


def main(args: list[str] | None = None, *, hooks: dict[str, Any] | None = None) -> None:
    """Entry point of the ``lco-embed`` console script (``args``: the command line, default ``sys.argv[1:]``).

    ``hooks`` reach the commands through click's context object: ``{"job_events": callback}`` is passed to the
    corpus job of ``lco-embed encode`` (:data:`lco_embedding.corpus.job.JobEvents`), e.g. by tests that stop a run at
    a known point.
    """
    cli(args=args, prog_name="lco-embed", obj=dict(hooks or {}))
