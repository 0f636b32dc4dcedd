"""Prometheus metrics of the server (``GET /metrics``), in a registry of its own per app.

Under ``--workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set, :mod:`.processes`) every worker writes its values to that
folder and ``/metrics`` adds up all workers' (gauges: the live workers' sum).
"""

from __future__ import annotations

__all__ = ["ServerMetrics"]

_BATCH_ITEMS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """Requests by status, items, batch sizes (items and padded tokens), queue depth (admitted, and waiting for the
    model), latency, cancellations."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lco_requests",
            "API requests answered (embeddings, and errors of any route), by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.items = Counter("lco_items", "Items embedded.", registry=self.registry)
        self.cancelled_items = Counter(
            "lco_cancelled_items", "Items dropped because their client disconnected.", registry=self.registry
        )
        self.batch_items = Histogram(
            "lco_batch_items", "Items per forward pass.", buckets=_BATCH_ITEMS, registry=self.registry
        )
        self.batch_tokens = Histogram(
            "lco_batch_padded_tokens",
            "Padded tokens per forward pass.",
            buckets=(64, 256, 1024, 4096, 16384, 65536, 262144),
            registry=self.registry,
        )
        self.queue_items = Gauge(
            "lco_queue_items",
            "Items admitted and not yet answered.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pending_items = Gauge(
            "lco_pending_items",
            "Items preprocessed and waiting for a forward pass.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.truncated = Counter(
            "lco_truncated_items",
            "Items cut by preprocessing: text past max_length, sound past max_audio_seconds, videos whose frames "
            "were sampled.",
            ["kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lco_request_seconds",
            "Time from a request's arrival to its answer.",
            buckets=_LATENCY,
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        import os

        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # --workers: every worker's values, added up
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count_truncated(self, cut: list[dict[str, float]]) -> None:
        """Count the pieces preprocessing cut, by kind (``text``, ``audio``, ``video``)."""
        from lco_embedding.core import notes

        for kind, key in (("text", notes.TEXT), ("audio", notes.AUDIO_SECONDS), ("video", notes.VIDEO_FRAMES)):
            found = sum(1 for c in cut if c.get(key, 0) > 0)
            if found:
                self.truncated.labels(kind=kind).inc(found)

    def observe_batch(self, items: int, padded_tokens: int) -> None:
        """Record one forward pass."""
        self.batch_items.observe(items)
        self.batch_tokens.observe(padded_tokens)
