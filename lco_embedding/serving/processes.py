"""``lco-embed serve --workers N``: N server processes sharing one port and nothing else.

Each worker is a process of its own (uvicorn's supervisor starts them with ``spawn``) that loads the model itself,
so memory grows with N: N copies of the weights. On a CPU the cores are split between them (each worker's torch
uses ``cores // N`` threads), so N > 1 helps when the per-request work in Python — one core's worth per process —
is the limit, not the forward pass. On a GPU run one process per GPU instead (``CUDA_VISIBLE_DEVICES``).

What a worker needs travels in one environment variable (:data:`SPEC_VARIABLE`), a JSON document written by the
command line; :func:`app_from_environment` is the factory uvicorn calls in each worker.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from lco_embedding.serving.settings import ServerSettings

__all__ = ["SPEC_VARIABLE", "WorkerSpec", "app_from_environment", "run_workers"]

#: The environment variable that carries a :class:`WorkerSpec` to the workers.
SPEC_VARIABLE = "LCO_SERVE_WORKER_SPEC"


@dataclass
class WorkerSpec:
    """What every worker loads and how it serves: the model, its prompts, the server's settings, its threads."""

    model: str
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    torch_threads: int | None = None
    verbosity: tuple[int, bool] | None = None  # the command line's (-v count, -q): applied in each worker

    def __post_init__(self) -> None:
        if self.verbosity is not None:
            self.verbosity = (int(self.verbosity[0]), bool(self.verbosity[1]))  # JSON gives a list

    def to_json(self) -> str:
        """The spec as JSON (for :data:`SPEC_VARIABLE`)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        """The spec written by :meth:`to_json`."""
        return cls(**json.loads(text))


def build_app(spec: WorkerSpec) -> Any:
    """Load the model of ``spec`` and return its application (what one worker serves)."""
    import torch

    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.serving.app import create_app

    if spec.verbosity is not None:
        from lco_embedding.core.logs import configure_logging

        configure_logging(*spec.verbosity)
    if spec.torch_threads is not None:
        torch.set_num_threads(spec.torch_threads)
    embedder = LCOEmbedder(
        spec.model, revision=spec.revision, device=spec.device, dtype=spec.dtype, quantization=spec.quantization
    )
    embedder.prompts.update(spec.prompts)
    if spec.default_prompt is not None:
        if spec.default_prompt not in embedder.prompts:
            raise ValueError(
                f"--default-prompt {spec.default_prompt!r} is not a prompt of this server: give it with --prompt "
                f"{spec.default_prompt}=TEXT (prompts now: {', '.join(sorted(embedder.prompts)) or 'none'})."
            )
        embedder.default_prompt_name = spec.default_prompt
    return create_app(embedder, ServerSettings(**spec.settings))


def app_from_environment() -> Any:
    """The application factory of a worker: the spec from :data:`SPEC_VARIABLE`."""
    text = os.environ.get(SPEC_VARIABLE)
    if not text:
        raise RuntimeError(f"{SPEC_VARIABLE} is not set: workers are started by `lco-embed serve --workers N`.")
    return build_app(WorkerSpec.from_json(text))


def run_workers(spec: WorkerSpec, *, host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Serve ``spec`` with ``workers`` processes on ``host:port`` until interrupted. Each worker's torch gets
    ``cores // workers`` CPU threads unless ``spec.torch_threads`` says otherwise."""
    import uvicorn

    if spec.torch_threads is None:
        spec.torch_threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ[SPEC_VARIABLE] = spec.to_json()
    uvicorn.run(
        "lco_embedding.serving.processes:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
