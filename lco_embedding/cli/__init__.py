"""The ``lco-embed`` command line: ``encode``, ``search``, ``index``, ``export``, ``eval``, ``info``, ``demo``,
``serve``, ``analyze``, ``train`` and ``merge``.

Built on click. Every command imports torch, transformers and pyarrow only when it runs, so ``lco-embed --help``
answers at once. The library underneath is :mod:`lco_embedding.corpus`.
"""

from lco_embedding.cli.main import main

__all__ = ["main"]
