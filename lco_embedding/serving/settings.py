"""The server's settings: batching, limits, and what a client may make the server fetch."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ServerSettings"]


@dataclass
class ServerSettings:
    """How ``lco-embed serve`` batches, what it accepts, and who may call it.

    Attributes:
        served_model_name: The name clients pass as ``model`` (and ``GET /v1/models`` lists).
        api_key: When set, every ``/v1`` and ``/metrics`` request needs ``Authorization: Bearer <api_key>``.
        max_wait_ms: How long the first item of a batch waits for others before the batch runs.
        max_tokens_per_batch: Token budget of one forward pass (default: the model's).
        max_batch_items: Most items in one forward pass.
        max_queue_items: Items admitted and not yet answered; beyond it requests get 429 with Retry-After.
        max_queue_tokens: Tokens of featurized items waiting for the model (counted after each item's own media
            settings); a request that would pass it while others wait gets 429 with Retry-After, a request whose own
            tokens pass it 413 (it could never be admitted). Default: 32 forward passes' budget.
        featurize_workers: Threads that load and preprocess items while the model runs.
        max_items_per_request: Most items in one request, in every request shape (``input``, ``messages`` counts
            as one item, Cohere's ``texts``, ``images`` and ``inputs``).
        max_parts_per_request: Most content parts in one request, all items together (a string or a typed part is
            one; an item ``{"text", "image"}`` two; every part of every message of ``messages``). Counted before
            anything is decoded.
        max_item_tokens: Most tokens one item may become, under every preset (one without a text cut too): a text
            longer than that is refused after tokenizing no more of it than the check needs, an item of media once
            it is preprocessed. Default: 32,768, Qwen2.5-Omni's context.
        max_item_bytes: Largest item: text in UTF-8 bytes, media after base64 decoding or download.
        max_body_bytes: Largest request body.
        allow_url: Fetch http(s) URLs given as media (off: only data URIs are accepted).
        allowed_hosts: With ``allow_url``, only these host names; and the only way to reach loopback, private,
            link-local or reserved addresses, which are refused otherwise (server-side request forgery).
        url_timeout_s: Connect and read timeout of a media download.
        int8_range: The range ``/v2/embed``'s int8 and uint8 embeddings quantize (one for every dimension; default
            ``4 / sqrt(dimension)``: :mod:`lco_embedding.serving.cohere`).
    """

    served_model_name: str = "lco-embedding"
    api_key: str | None = None
    max_wait_ms: float = 2.0
    max_tokens_per_batch: int | None = None
    max_batch_items: int = 64
    max_queue_items: int = 1024
    max_queue_tokens: int | None = None
    featurize_workers: int = 4
    max_items_per_request: int = 256
    max_parts_per_request: int = 512
    max_item_tokens: int = 32_768
    max_item_bytes: int = 20 * 2**20
    max_body_bytes: int = 64 * 2**20
    allow_url: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    url_timeout_s: float = 20.0
    int8_range: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_batch_items",
            "max_queue_items",
            "max_items_per_request",
            "max_parts_per_request",
            "max_item_tokens",
            "max_item_bytes",
            "max_body_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.max_queue_tokens is not None and self.max_queue_tokens < 1:
            raise ValueError(f"max_queue_tokens must be a positive integer or None, got {self.max_queue_tokens}.")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {self.max_wait_ms}.")
        if self.int8_range is not None and not self.int8_range > 0:
            raise ValueError(f"int8_range must be positive, got {self.int8_range}.")
        if self.featurize_workers < 1:
            raise ValueError(f"featurize_workers must be at least 1, got {self.featurize_workers}.")
