"""The training loop: LoRA refinement of an LCO-Embedding (or base Qwen2.5-Omni / Qwen2.5-VL) checkpoint, contrastive
or generative, on one process or many (``torchrun``), resumable from its checkpoints.

Output folder::

    adapter/                  the final LoRA adapter (+ lco_adapter.json naming the base), for `lco-embed merge`
    checkpoints/step-000500/  adapter, optimizer, scheduler, random states and state.json (the newest few kept)
    train_log.jsonl           one line per step: step, epoch, loss, learning rate, gradient norm, example lines
    config.json               the training configuration

The data order is a function of the seed and the step alone (one permutation of the examples per epoch, cut into
global batches), so a resumed run sees exactly the batches the uninterrupted run would have seen; with the saved
random states it continues bit for bit on the same machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist

from lco_embedding.core.errors import LCOInputError
from lco_embedding.embedder import LCOEmbedder
from lco_embedding.pipeline.features import Features
from lco_embedding.training.contrastive import RandomState, contrastive_backward
from lco_embedding.training.data import (
    ContrastiveExample,
    GenerativeExample,
    read_contrastive_data,
    read_generative_data,
)
from lco_embedding.training.generative import featurize_generative, generative_loss, target_tokens
from lco_embedding.training.lora import LoraSettings, add_lora, attach_adapter, save_adapter

__all__ = ["TrainingConfig", "TrainResult", "batch_order", "train"]

logger = logging.getLogger(__name__)

Stage = Literal["contrastive", "generative"]
LOG_FILE = "train_log.jsonl"
_STATE_FILE = "state.json"
# Settings a resumed run must share with the run that wrote the checkpoint (the others may change).
_RESUME_INDEPENDENT = {"save_steps", "keep_checkpoints", "log_steps", "gradient_checkpointing"}


@dataclass
class TrainingConfig:
    """Hyper-parameters of a training run (defaults: the authors' recipe where they published one).

    Attributes:
        stage: ``"contrastive"`` (InfoNCE on anchor/positive/negative examples) or ``"generative"`` (next-token
            loss on captions and documents).
        epochs: Passes over the data (the authors: 2); ignored when ``max_steps`` is set.
        max_steps: Optimizer steps to run.
        batch_size: Examples per optimizer step, summed over all processes (the global batch; the authors' 1,056).
        mini_batch_size: Items per forward pass: with it, contrastive steps use gradient caching and generative
            steps accumulate gradients, so the global batch fits in memory. ``None``: the whole share at once.
        learning_rate: Peak learning rate of AdamW (the authors: 4e-4).
        warmup_ratio: Share of the steps with a linear warm-up; then linear decay to zero.
        weight_decay: AdamW weight decay.
        max_grad_norm: Gradient clipping (``None``: none).
        temperature: InfoNCE temperature (the authors: 0.03).
        lora: LoRA rank, alpha and dropout (the authors: 64, 128, 0.05).
        max_length: User text is cut to this many tokens (the authors trained with 650).
        seed: Seed of the data order and of the adapters' initialisation.
        save_steps: Write a checkpoint every this many steps (and after the last one).
        keep_checkpoints: Checkpoints kept (the newest).
        log_steps: Log a progress line every this many steps (``train_log.jsonl`` gets every step).
        gradient_checkpointing: Recompute activations in the backward pass; default on for CUDA, off on CPU.
    """

    stage: Stage = "contrastive"
    epochs: float = 2.0
    max_steps: int | None = None
    batch_size: int = 32
    mini_batch_size: int | None = None
    learning_rate: float = 4e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    temperature: float = 0.03
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_length: int = 650
    seed: int = 42
    save_steps: int = 500
    keep_checkpoints: int = 2
    log_steps: int = 10
    gradient_checkpointing: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.stage not in ("contrastive", "generative"):
            raise ValueError(f"stage must be 'contrastive' or 'generative', got {self.stage!r}.")
        counts = ("batch_size", "save_steps", "max_length", "keep_checkpoints", "log_steps", "max_steps")
        for name in (*counts, "mini_batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.epochs <= 0 or self.learning_rate <= 0 or self.temperature <= 0:
            raise ValueError("epochs, learning_rate and temperature must be positive.")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        adapter: The final adapter folder.
        steps: Optimizer steps done in all (resumed ones included).
        loss: The last step's loss.
        log: The ``train_log.jsonl`` file.
    """

    adapter: Path
    steps: int
    loss: float
    log: Path


def batch_order(examples: int, batch_size: int, seed: int, world_size: int = 1) -> Callable[[int], np.ndarray]:
    """The examples of each step: ``order(step)`` -> indices of that step's global batch.

    Each epoch is one permutation of the examples (seeded by ``seed`` and the epoch), cut into batches of
    ``batch_size``; a last batch smaller than ``world_size`` is left out (every process needs an example).
    """
    per_epoch = _batches_per_epoch(examples, batch_size, world_size)

    def order(step: int) -> np.ndarray:
        epoch, batch = divmod(step, per_epoch)
        permutation = np.random.default_rng([seed, epoch]).permutation(examples)
        return permutation[batch * batch_size : (batch + 1) * batch_size]

    return order


def _batches_per_epoch(examples: int, batch_size: int, world_size: int) -> int:
    full, rest = divmod(examples, batch_size)
    per_epoch = full + (rest >= world_size)
    if per_epoch == 0:
        raise ValueError(f"{examples} examples cannot make a batch for {world_size} processes.")
    return per_epoch


def _distributed() -> tuple[int, int, bool]:
    """``(rank, world size, whether this call started the process group)``; starts one under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, False
    started = False
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        started = True
    return dist.get_rank(), dist.get_world_size(), started


def _data_fingerprint(examples: Sequence[Any]) -> str:
    return hashlib.sha256(repr(list(examples)).encode()).hexdigest()[:16]


def _schedule(total: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(math.ceil(total * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


class _Run:
    """The state of one training run (one process's part of it)."""

    def __init__(
        self,
        embedder: LCOEmbedder,
        examples: Sequence[ContrastiveExample | GenerativeExample],
        output_dir: Path,
        config: TrainingConfig,
        rank: int,
        world: int,
        source: str,
    ) -> None:
        self.embedder, self.examples, self.output_dir, self.config = embedder, examples, output_dir, config
        self.rank, self.world, self.source = rank, world, source
        # The model's pipeline with the training run's own text length (the model's settings stay as they are).
        self.pipeline = embedder.pipeline(settings=embedder.embedder_settings.replace(max_length=config.max_length))
        self.per_epoch = _batches_per_epoch(len(examples), config.batch_size, world)
        self.total = config.max_steps or int(math.ceil(config.epochs * self.per_epoch))
        self.order = batch_order(len(examples), config.batch_size, config.seed, world)
        self.state = {
            "config": asdict(config),
            "data": {"source": source, "examples": len(examples), "fingerprint": _data_fingerprint(examples)},
            "base_model": embedder.model_name_or_path,
            "world_size": world,
        }

    # ------------------------------------------------------------------------------------------------ featurize
    def _features(self, index: int, item: Any, line: int) -> Features:
        try:
            return self.pipeline.featurize(index, item)
        except LCOInputError as e:
            raise ValueError(f"{self.source}, line {line}: {e}") from e

    def _share(self, step: int) -> tuple[np.ndarray, list[Any]]:
        batch = self.order(step)
        mine = np.array_split(batch, self.world)[self.rank]
        return batch, [self.examples[i] for i in mine]

    # ---------------------------------------------------------------------------------------------------- steps
    def _encode(self, features: Sequence[Features]) -> torch.Tensor:
        return self.pipeline.embed(list(features), grad=True)  # no graph under the caller's torch.no_grad()

    def contrastive_step(self, share: list[ContrastiveExample], global_batch: int) -> float:
        queries = [self._features(i, ex.anchor, ex.line) for i, ex in enumerate(share)]
        documents = [self._features(i, ex.positive, ex.line) for i, ex in enumerate(share)]
        documents += [self._features(i, n, ex.line) for i, ex in enumerate(share) for n in ex.negatives]
        return contrastive_backward(
            self._encode,
            queries,
            documents,
            temperature=self.config.temperature,
            mini_batch_size=self.config.mini_batch_size,
            global_queries=global_batch,
            device=self.embedder.device,
        )

    def generative_step(self, share: list[GenerativeExample]) -> float:
        featurized = []
        for example in share:
            try:
                featurized.append(featurize_generative(self.pipeline.featurizer, example))
            except LCOInputError as e:
                raise ValueError(f"{self.source}, line {example.line}: {e}") from e
        tokens = torch.tensor(float(target_tokens(featurized)), device=self.embedder.device)
        if self.world > 1:
            dist.all_reduce(tokens)
        size = self.config.mini_batch_size or len(featurized)
        total = 0.0
        for start in range(0, len(featurized), size):
            loss = generative_loss(self.pipeline, featurized[start : start + size], normalizer=max(int(tokens), 1))
            loss.backward()
            total += float(loss.detach())
        return total

    def step(self, step: int) -> dict[str, Any]:
        """Run one optimizer step's forward and backward passes; returns its log record (without the update)."""
        batch, share = self._share(step)
        if self.config.stage == "contrastive":
            loss = self.contrastive_step(share, len(batch))
        else:
            loss = self.generative_step(share)
        return {
            "step": step + 1,
            "total_steps": self.total,
            "epoch": round((step + 1) / self.per_epoch, 4),
            "loss": loss,
            "examples": [self.examples[i].line for i in batch],
        }


def _reduce(parameters: list[torch.nn.Parameter], loss: float, device: torch.device) -> float:
    """Sum gradients and losses over processes (each process's loss is its share of the global mean)."""
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
    value = torch.tensor(loss, device=device, dtype=torch.float64)
    dist.all_reduce(value)
    return float(value)


def _checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("step-") and (p / _STATE_FILE).is_file())


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    differences = []
    for key in ("base_model", "world_size", "data", "config"):
        old, new = saved.get(key), current.get(key)
        if key == "config":
            old = {k: v for k, v in (old or {}).items() if k not in _RESUME_INDEPENDENT}
            new = {k: v for k, v in new.items() if k not in _RESUME_INDEPENDENT}
        if isinstance(old, dict) and isinstance(new, dict):
            changed = [k for k in sorted(old | new) if old.get(k) != new.get(k)]
            differences += [f"{key}.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed]
        elif old != new:
            differences.append(f"{key}: {old!r} -> {new!r}")
    return differences


def _save_checkpoint(run: _Run, peft_model: Any, optimizer: Any, scheduler: Any, step: int) -> None:
    folder = run.output_dir / "checkpoints"
    final = folder / f"step-{step:06d}"
    temporary = folder / f".step-{step:06d}.tmp"
    if run.rank == 0:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    if run.world > 1:
        dist.barrier()
    state = RandomState.capture(run.embedder.device)
    torch.save({"cpu": state.cpu, "cuda": state.cuda}, temporary / f"rng-{run.rank}.pt")
    if run.world > 1:
        dist.barrier()
    if run.rank == 0:
        peft_model.save_pretrained(str(temporary / "adapter"))
        torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
        torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
        (temporary / _STATE_FILE).write_text(json.dumps({**run.state, "step": step}, indent=1) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        for old in _checkpoints(run.output_dir)[: -run.config.keep_checkpoints]:
            shutil.rmtree(old)
    if run.world > 1:
        dist.barrier()


def _load_checkpoint(run: _Run, checkpoint: Path, optimizer: Any, scheduler: Any) -> int:
    saved = json.loads((checkpoint / _STATE_FILE).read_text())
    differences = _differences(saved, run.state)
    if differences:
        raise ValueError(
            f"cannot resume from {checkpoint}: the run differs from the one that wrote it ("
            + "; ".join(differences)
            + "). Use the same model, data and settings, or a new output folder."
        )
    device = run.embedder.device
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
    rng = torch.load(checkpoint / f"rng-{run.rank}.pt", weights_only=True)
    RandomState(cpu=rng["cpu"], cuda=rng["cuda"], device=device).restore()
    return int(saved["step"])


def _truncate_log(log: Path, step: int) -> None:
    """Drop the log lines of steps after ``step`` (done after the checkpoint a resumed run starts from)."""
    if not log.exists():
        return
    lines = [line for line in log.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    log.write_text("".join(line + "\n" for line in lines))


def train(
    model: str,
    data: str | os.PathLike[str] | Sequence[ContrastiveExample | GenerativeExample],
    output_dir: str | os.PathLike[str],
    config: TrainingConfig | None = None,
    *,
    adapter: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    embedder_kwargs: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``model`` and write it to ``output_dir/adapter``.

    Args:
        model: An LCO-Embedding checkpoint, or a base Qwen2.5-Omni / Qwen2.5-VL one (hub id or folder).
        data: A JSONL file (see :mod:`lco_embedding.training.data`) or a list of examples.
        output_dir: Where the adapter, checkpoints and log go.
        config: Hyper-parameters (default: :class:`TrainingConfig`'s).
        adapter: Continue training this adapter instead of adding a fresh one.
        resume: Continue from the newest checkpoint in ``output_dir`` (an error if the model, data or settings
            differ from the run that wrote it); without a checkpoint, start from the beginning.
        overwrite: Delete the log and checkpoints of an earlier run in ``output_dir`` (without it or ``resume``,
            such a folder is an error).
        device: Default: ``cuda:LOCAL_RANK`` under torchrun with CUDA, else as :class:`LCOEmbedder`.
        dtype: Default: bfloat16 on CUDA, float32 on CPU.
        embedder_kwargs: Other :class:`LCOEmbedder` arguments (e.g. ``max_pixels``).
        on_step: Called with each step's log record on every process (for progress displays and tests).

    Under ``torchrun --nproc-per-node N``, each process embeds its share of every global batch, the loss sees the
    documents of all processes, and gradients are summed: the update is that of one process with the whole batch.
    """
    config = config or TrainingConfig()
    rank, world, started = _distributed()
    output_dir = Path(output_dir)
    try:
        if isinstance(data, str | os.PathLike):
            reader = read_contrastive_data if config.stage == "contrastive" else read_generative_data
            source, examples = str(data), reader(data)
        else:
            source, examples = "<examples>", list(data)
        expected = ContrastiveExample if config.stage == "contrastive" else GenerativeExample
        if not all(isinstance(example, expected) for example in examples):
            raise TypeError(f"the {config.stage} stage needs {expected.__name__} examples.")
        earlier = [p for p in (output_dir / LOG_FILE, output_dir / "checkpoints") if p.exists()]
        if earlier and not (resume or overwrite):
            raise FileExistsError(
                f"{output_dir} holds an earlier run ({', '.join(p.name for p in earlier)}); continue it with "
                "resume=True (--resume) or replace it with overwrite=True (--overwrite)."
            )
        if device is None and world > 1 and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        embedder = LCOEmbedder(model, device=device, dtype=dtype, **(embedder_kwargs or {}))
        run = _Run(embedder, examples, output_dir, config, rank, world, source)
        return _train(run, adapter, resume, on_step)
    finally:
        if started:
            dist.destroy_process_group()


def _start_log(run: _Run, log: Path, resume: bool, start: int, trainable: int) -> None:
    """On rank 0: the output folder, the log from ``start`` on, the run's config, and a line saying what runs."""
    run.output_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        log.unlink(missing_ok=True)
        shutil.rmtree(run.output_dir / "checkpoints", ignore_errors=True)
    _truncate_log(log, start)
    (run.output_dir / "config.json").write_text(json.dumps(run.state, indent=1) + "\n")
    logger.info(
        "Training %s (%s stage) on %d examples: steps %d to %d of %d, %d trainable parameters, %d process(es).",
        run.embedder.model_name_or_path,
        run.config.stage,
        len(run.examples),
        start + 1,
        run.total,
        run.total,
        trainable,
        run.world,
    )


def _log_step(run: _Run, log: Path, step: int, record: dict[str, Any]) -> None:
    """On rank 0: the step's record in the log, and a line every ``log_steps``."""
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    if (step + 1) % run.config.log_steps == 0 or step + 1 == run.total:
        logger.info(
            "step %d/%d  loss %.4f  lr %.3g  %.2fs",
            step + 1,
            run.total,
            record["loss"],
            record["learning_rate"],
            record["seconds"],
        )


def _train(
    run: _Run,
    adapter: str | os.PathLike[str] | None,
    resume: bool,
    on_step: Callable[[dict[str, Any]], None] | None,
) -> TrainResult:
    embedder, output_dir, config = run.embedder, run.output_dir, run.config
    rank, world, source = run.rank, run.world, run.source
    checkpoint = _checkpoints(output_dir)[-1] if resume and _checkpoints(output_dir) else None
    torch.manual_seed(config.seed)
    if checkpoint is not None:
        peft_model = attach_adapter(embedder, checkpoint / "adapter", trainable=True)
    elif adapter is not None:
        peft_model = attach_adapter(embedder, adapter, trainable=True)
    else:
        peft_model = add_lora(embedder, config.lora)
    checkpointing = config.gradient_checkpointing
    if checkpointing is None:
        checkpointing = embedder.device.type == "cuda"
    if checkpointing:
        embedder.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    parameters = [p for p in embedder.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(run.total, config.warmup_ratio))
    start = _load_checkpoint(run, checkpoint, optimizer, scheduler) if checkpoint is not None else 0
    log = output_dir / LOG_FILE
    if rank == 0:
        _start_log(run, log, resume, start, sum(p.numel() for p in parameters))
    record: dict[str, Any] = {"loss": float("nan")}
    embedder.model.train()
    try:
        for step in range(start, run.total):
            began = time.perf_counter()
            record = run.step(step)
            if world > 1:
                record["loss"] = _reduce(parameters, record["loss"], embedder.device)
            if not math.isfinite(record["loss"]):
                raise FloatingPointError(f"the loss is {record['loss']} at step {step + 1}; lower the learning rate.")
            norm = torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm or float("inf"))
            record["learning_rate"] = scheduler.get_last_lr()[0]
            record["grad_norm"] = float(norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            record["seconds"] = round(time.perf_counter() - began, 4)
            if rank == 0:
                _log_step(run, log, step, record)
            if on_step is not None:
                on_step(record)
            if (step + 1) % config.save_steps == 0 or step + 1 == run.total:
                _save_checkpoint(run, peft_model, optimizer, scheduler, step + 1)
    finally:
        embedder.model.eval()
        if checkpointing:
            embedder.model.gradient_checkpointing_disable()
    final = output_dir / "adapter"
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        save_adapter(
            peft_model, embedder, final, stage=config.stage, steps=run.total, config=asdict(config), data=source
        )
    if world > 1:
        dist.barrier()
    return TrainResult(adapter=final, steps=run.total, loss=record["loss"], log=log)
