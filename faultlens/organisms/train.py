"""A plain training loop for the organism model, with the four `Monitor` hooks.

Deliberately boring: AdamW (or SGD), linear warmup then cosine or constant LR, optional
gradient clipping and z-loss, optional fp16/bf16 parameters. It stops at the first
non-finite loss (after the monitors have seen it). It does not know any recipe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from faultlens.monitor.base import Monitor
from faultlens.organisms.data import Task
from faultlens.organisms.model import OrganismConfig, OrganismLM

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        schedule: "cosine" (to `min_lr_frac` × lr) or "constant", both after `warmup` steps.
        z_loss: coefficient of PaLM's auxiliary ``z · log²Z`` (Chowdhery et al. 2022); 0 = off.
        dtype: parameter/compute dtype; "float16" reproduces an fp16 run without loss scaling.
        eval_every: run `evaluate` + `on_eval` every this many steps (0 = only at the end).
    """

    steps: int = 300
    batch_size: int = 32
    seq_len: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 1e-4
    warmup: int = 20
    schedule: str = "cosine"
    min_lr_frac: float = 0.1
    grad_clip: float | None = None
    z_loss: float = 0.0
    dtype: str = "float32"
    seed: int = 0
    eval_every: int = 0
    eval_batches: int = 4
    eval_seq_len: int | None = None


@dataclass
class TrainResult:
    model: OrganismLM
    losses: list[float] = field(default_factory=list)
    val_loss: float = float("nan")
    nan_step: int | None = None
    seconds: float = 0.0
    config: dict = field(default_factory=dict)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def lm_loss(logits: Tensor, y: Tensor, z_loss: float = 0.0) -> Tensor:
    """Mean cross-entropy over targeted positions (+ z-loss). logits ``[B, T, V]``, y ``[B, T]``."""
    flat = logits.float().flatten(0, 1)  # [B*T, V]
    loss = F.cross_entropy(flat, y.flatten(), ignore_index=-100)
    if z_loss:
        keep = y.flatten() != -100
        log_z = torch.logsumexp(flat[keep], dim=-1)  # [N]
        loss = loss + z_loss * (log_z ** 2).mean()
    return loss


@torch.no_grad()
def evaluate(model: OrganismLM, task: Task, cfg: TrainConfig, seq_len: int | None = None) -> float:
    """Mean validation cross-entropy on `eval_batches` fixed held-out batches."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    T = seq_len or cfg.eval_seq_len or cfg.seq_len
    tot = 0.0
    for _ in range(cfg.eval_batches):
        x, y = task.sample(gen, cfg.batch_size, T, "val")
        tot += float(lm_loss(model(x), y))
    model.train(was)
    return tot / cfg.eval_batches


def _optimizer(model: OrganismLM, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay)


def train(model_cfg: OrganismConfig, cfg: TrainConfig, task: Task,
          monitors: Sequence[Monitor] = ()) -> TrainResult:
    """Train a fresh `OrganismLM` on `task`, calling every monitor's hooks.

    Returns:
        A `TrainResult` with the trained model, per-step losses, the final validation loss
        (NaN if training stopped on a non-finite loss) and the first non-finite step.
    """
    torch.manual_seed(cfg.seed)
    model = OrganismLM(model_cfg).to(_DTYPES[cfg.dtype])
    opt = _optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    res = TrainResult(model, config={"model": model_cfg.to_dict(), "train": asdict(cfg), "task": task.name})
    t0 = time.perf_counter()
    model.train()
    for m in monitors:
        m.on_train_start(model)
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        x, y = task.sample(gen, cfg.batch_size, cfg.seq_len, "train")
        loss = lm_loss(model(x), y, cfg.z_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for m in monitors:
            m.on_step(step, model, loss.detach(), opt, x)
        res.losses.append(float(loss.detach()))
        if not math.isfinite(res.losses[-1]):
            res.nan_step = step
            break
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            val = evaluate(model, task, cfg)
            for m in monitors:
                m.on_eval(step, model, {"val_loss": val})
    if res.nan_step is None:
        res.val_loss = evaluate(model, task, cfg)
        for m in monitors:
            m.on_eval(len(res.losses) - 1, model, {"val_loss": res.val_loss})
    for m in monitors:
        m.on_train_end(model)
    res.seconds = time.perf_counter() - t0
    model.eval()
    return res
