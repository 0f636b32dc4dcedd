"""An OpenAI- and Cohere-compatible multimodal embedding server with dynamic batching (``lco-embed serve``).

* :mod:`.app` — the HTTP API (FastAPI): ``POST /v1/embeddings``, ``POST /v2/embed``, ``GET /v1/models``,
  ``/health``, ``/ready``, ``/metrics``; :mod:`.routes` — the embedding routes; :mod:`.wire`, :mod:`.cohere` — their
  request and answer bytes;
* :mod:`.runner` — :class:`MainThreadRunner`: the model's loop on the main thread, HTTP in a thread;
* :mod:`.batcher` — dynamic batching of concurrent requests by tokens, admission control, cancellation;
* :mod:`.inputs` — the request's ``input`` checked and turned into items; :mod:`.fetch` — URL downloads that
  cannot reach inside the network; :mod:`.settings`; :mod:`.metrics`.

``pip install 'lco-embedding[server]'``.
"""

from lco_embedding.serving.app import create_app
from lco_embedding.serving.runner import MainThreadRunner
from lco_embedding.serving.settings import ServerSettings

__all__ = ["MainThreadRunner", "ServerSettings", "create_app"]
