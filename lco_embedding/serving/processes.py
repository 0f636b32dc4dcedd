"""``lco-embed serve --workers N``: N server processes sharing one port and nothing else but their metrics.

Each worker is a process of its own (started with ``spawn``) that loads the model itself, so memory grows with N:
N copies of the weights. Each binds the port with ``SO_REUSEPORT`` (the kernel spreads connections over them) and
serves as one process does: the model's loop on its main thread, HTTP in a thread
(:class:`~lco_embedding.serving.runner.MainThreadRunner`). On a CPU the cores are split between them (each worker's
torch uses ``cores // N`` threads), so N > 1 helps when the per-request work in Python — one core's worth per
process — is the limit, not the forward pass. On a GPU run one process per GPU instead (``CUDA_VISIBLE_DEVICES``).

``/metrics`` adds up every worker's counters (Prometheus' multiprocess mode: each process writes its values to
files in a folder the supervisor makes, ``PROMETHEUS_MULTIPROC_DIR``, removed when it stops), whichever worker
answers.

What a worker needs travels in one environment variable (:data:`SPEC_VARIABLE`), a JSON document written by the
command line; :func:`app_from_environment` builds a worker's app from it.

Does not restart a worker that dies (the others keep serving; the supervisor stops them all when one fails at
start-up), and needs ``SO_REUSEPORT`` (Linux, the BSDs, macOS).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from lco_embedding.serving.settings import ServerSettings

__all__ = ["METRICS_VARIABLE", "SPEC_VARIABLE", "WorkerSpec", "app_from_environment", "run_workers"]

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
    preset: str | None = None  # the command line's --preset

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


def build_app(spec: WorkerSpec, model_loop: Any = None) -> Any:
    """Load the model of ``spec`` and return its application (what one worker serves; ``model_loop``: as
    :func:`~lco_embedding.serving.create_app` takes it)."""
    import torch

    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.serving.app import create_app

    if spec.verbosity is not None:
        from lco_embedding.core.logs import configure_logging

        configure_logging(*spec.verbosity)
    if spec.torch_threads is not None:
        torch.set_num_threads(spec.torch_threads)
    embedder = LCOEmbedder(
        spec.model,
        revision=spec.revision,
        device=spec.device,
        dtype=spec.dtype,
        quantization=spec.quantization,
        **({"preset": spec.preset} if spec.preset else {}),
    )
    embedder.prompts.update(spec.prompts)
    if spec.default_prompt is not None:
        if spec.default_prompt not in embedder.prompts:
            raise ValueError(
                f"--default-prompt {spec.default_prompt!r} is not a prompt of this server: give it with --prompt "
                f"{spec.default_prompt}=TEXT (prompts now: {', '.join(sorted(embedder.prompts)) or 'none'})."
            )
        embedder.default_prompt_name = spec.default_prompt
    return create_app(embedder, ServerSettings(**spec.settings), model_loop=model_loop)


def app_from_environment() -> Any:
    """The application factory of a worker: the spec from :data:`SPEC_VARIABLE`."""
    text = os.environ.get(SPEC_VARIABLE)
    if not text:
        raise RuntimeError(f"{SPEC_VARIABLE} is not set: workers are started by `lco-embed serve --workers N`.")
    return build_app(WorkerSpec.from_json(text))


def run_workers(spec: WorkerSpec, *, host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Serve ``spec`` with ``workers`` processes on ``host:port`` until interrupted (SIGINT or SIGTERM stop every
    worker gracefully). Each worker's torch gets ``cores // workers`` CPU threads unless ``spec.torch_threads``
    says otherwise."""
    import multiprocessing
    import shutil
    import signal
    import tempfile

    if spec.torch_threads is None:
        spec.torch_threads = max(1, (os.cpu_count() or 1) // workers)
    metrics_folder = tempfile.mkdtemp(prefix="lco-serve-metrics-")
    os.environ[SPEC_VARIABLE] = spec.to_json()
    os.environ[METRICS_VARIABLE] = metrics_folder
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(host, port, log_level), name=f"lco-serve-worker-{n}")
        for n in range(workers)
    ]
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        while any(p.is_alive() for p in processes):
            for process in processes:
                process.join(timeout=0.2)
                if process.exitcode not in (None, 0) and not stopping:
                    stop()  # a worker failed (at start-up: a port in use, a model that does not load): stop all
    finally:
        stop()
        for process in processes:
            process.join(timeout=60)
        for number, handler in previous.items():
            signal.signal(number, handler)
        shutil.rmtree(metrics_folder, ignore_errors=True)


METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""Where Prometheus' multiprocess mode keeps each worker's values (set before a worker imports prometheus_client)."""


def _worker(host: str, port: int, log_level: str) -> None:
    """One worker process: bind the shared port, build the app, serve it with the model on this main thread."""
    import socket

    from lco_embedding.serving.runner import MainThreadRunner

    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    runner = MainThreadRunner()
    spec = WorkerSpec.from_json(os.environ[SPEC_VARIABLE])
    app = build_app(spec, model_loop=runner)
    runner.serve(app, log_level=log_level, sockets=[listener])
