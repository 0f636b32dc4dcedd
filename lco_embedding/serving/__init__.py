"""An OpenAI-compatible multimodal embedding server with dynamic batching (``lco-embed serve``).

* :mod:`.app` — the HTTP API (FastAPI): ``POST /v1/embeddings``, ``GET /v1/models``, ``/health``, ``/ready``,
  ``/metrics``;
* :mod:`.batcher` — dynamic batching of concurrent requests by tokens, admission control, cancellation;
* :mod:`.inputs` — the request's ``input`` checked and turned into items; :mod:`.fetch` — URL downloads that
  cannot reach inside the network; :mod:`.settings`; :mod:`.metrics`.

``pip install 'lco-embedding[server]'``.
"""

from lco_embedding.serving.app import create_app
from lco_embedding.serving.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
