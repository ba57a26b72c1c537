"""Training-pathology recipes (seed 002): each is a pathological run and its mitigated twin,
with the monitor findings the pathological run must raise and the twin must not.

Settings follow the measured CPU recipes in ../shared/notes/dynamics.md §8, shrunk where a
smaller run shows the same failure. `run_recipe` trains both twins under a `HealthMonitor`
and reports which expected categories fired, at which step, plus key numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import torch

from faultlens.monitor.config import MonitorConfig, Thresholds
from faultlens.monitor.health import HealthMonitor
from faultlens.organisms.data import tasks
from faultlens.organisms.model import OrganismConfig
from faultlens.organisms.train import TrainConfig, TrainResult, train
from faultlens.registry import Registry


@dataclass(frozen=True)
class Recipe:
    """A named pathology: two (model, train) settings that differ only by the mitigation.

    Attributes:
        expected: finding categories the pathological run must raise and the twin must not.
        eval_len: if set, the monitor gets a held-out batch this long (length extrapolation).
        slow: the pair takes more than ~20 s on 2 cores.
    """

    name: str
    doc: str
    task: str
    model: OrganismConfig
    train: TrainConfig
    mitigated_model: OrganismConfig
    mitigated_train: TrainConfig
    mitigation: str
    expected: tuple[str, ...]
    task_kwargs: dict = field(default_factory=dict)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    eval_len: int | None = None
    slow: bool = False


recipes: Registry[Recipe] = Registry("organism", "organisms")


def _add(r: Recipe) -> None:
    recipes.add(r.name, r, r.doc)


_CHAR = OrganismConfig(vocab_size=97, d_model=64, n_head=4, n_layer=2, block_size=64)
_FAST = TrainConfig(steps=100, batch_size=16, seq_len=64)

# lr 0.1 collapses by step 30, but then the QK-LN twin is still near-uniform at step 60 (its
# logits are bounded by √d_h until the LN gains grow), i.e. quiet only because it has not
# learnt attention yet; at lr 3e-2 / 100 steps the twin's heads are sharp (entropy ≈ 0.7).
_add(Recipe(
    "entropy_collapse", "attention-entropy collapse with attention-logit growth at high LR (Zhai 2023; Dehghani 2023)",
    "stdlib_chars", _CHAR, replace(_FAST, lr=3e-2), replace(_CHAR, qk_norm=True), replace(_FAST, lr=3e-2),
    "QK-LayerNorm", ("entropy collapse", "attention logit growth"), monitor=MonitorConfig(every=10)))

_DEEP = OrganismConfig(vocab_size=97, d_model=64, n_head=4, n_layer=12, norm="post", init_std=0.125)
_DEEP_TRAIN = TrainConfig(steps=150, batch_size=16, seq_len=64, lr=1e-3, betas=(0.9, 0.98), warmup=0,
                          schedule="constant")
_add(Recipe(
    "vanishing_gradients", "vanishing gradients in a deep Post-LN stack (Xiong et al. 2020)",
    "stdlib_chars", _DEEP, _DEEP_TRAIN, replace(_DEEP, norm="pre"), _DEEP_TRAIN,
    "Pre-LN", ("vanishing gradient",), monitor=MonitorConfig(every=10), slow=True))

_SAN = OrganismConfig(vocab_size=16, d_model=64, n_head=4, n_layer=12, norm="none", pos="none", causal=False,
                      residual=False, mlp=False, init_std=0.125, emb_std=1.0, block_size=16)
_SAN_TRAIN = TrainConfig(steps=20, batch_size=16, seq_len=16, lr=1e-3)
_add(Recipe(
    "rank_collapse", "rank collapse at initialisation in a deep pure-attention stack (Dong et al. 2021)",
    "prev_token", _SAN, _SAN_TRAIN, replace(_SAN, norm="pre", residual=True, mlp=True), _SAN_TRAIN,
    "skip connections + Pre-LN", ("rank collapse",), monitor=MonitorConfig(every=5, max_layers=12)))

_BIDI = OrganismConfig(vocab_size=16, d_model=64, n_head=4, n_layer=2, pos="none", causal=False, emb_std=1.0,
                       block_size=16)
_BIDI_TRAIN = TrainConfig(steps=300, batch_size=32, seq_len=16, lr=3e-3)
_add(Recipe(
    "order_blindness", "order blindness of bidirectional attention without positional encoding",
    "prev_token", _BIDI, _BIDI_TRAIN, replace(_BIDI, pos="sinusoidal"), _BIDI_TRAIN,
    "sinusoidal PE", ("order blindness",), monitor=MonitorConfig(every=50)))

_EXT = OrganismConfig(vocab_size=97, d_model=128, n_head=4, n_layer=2, pos="sinusoidal", emb_std=1.0,
                      block_size=64)
_EXT_TRAIN = TrainConfig(steps=400, batch_size=32, seq_len=64, lr=3e-3, weight_decay=0.1)
_add(Recipe(
    "length_extrapolation", "long-range failure past the training length with sinusoidal PE (Press et al. 2022)",
    "stdlib_chars", _EXT, _EXT_TRAIN, replace(_EXT, pos="alibi"), _EXT_TRAIN,
    "ALiBi", ("length extrapolation failure",), monitor=MonitorConfig(every=50), eval_len=256, slow=True))

# Sinks in seconds instead of hours: on Bigram-Backcopy with uniform non-trigger successors
# (Guo et al. 2024) a head is useful only after the few trigger tokens; anywhere else whatever
# it copies is noise, so it learns to park its mass on the constant BOS key (Gu et al. 2024: a
# sink acts as a key bias / no-op). A 1-layer attention-only model makes every head face this.
# Mitigation: sigmoid attention without normalisation (Gu et al. 2024 found no sink with it;
# bias −log T after Ramapuram et al. 2024): a head can give every key ~0 weight instead.
# Measured: a learnable per-head sink logit or sink key (softmax off-by-one) did NOT stop this
# sink (BOS mass 0.42-0.47 vs 0.48-0.50), so they are not used as the twin here.
_SINK = OrganismConfig(vocab_size=16, d_model=64, n_head=4, n_layer=1, mlp=False, pos="rope", block_size=32)
_SINK_TRAIN = TrainConfig(steps=200, batch_size=32, seq_len=32, lr=1e-2, weight_decay=0.1)
_add(Recipe(
    "attention_sinks", "attention sinks emerging on the first token (Xiao et al. 2023; Gu et al. 2024)",
    "bigram_backcopy", _SINK, _SINK_TRAIN, replace(_SINK, attn_fn="sigmoid"), _SINK_TRAIN,
    "sigmoid attention (no softmax normalisation)", ("attention sink",),
    task_kwargs={"vocab": 16, "n_triggers": 3, "branching": 15},
    monitor=MonitorConfig(every=25, thresholds=Thresholds(sink_share=0.3))))

_ZL = OrganismConfig(vocab_size=64, d_model=64, n_head=2, n_layer=1, qk_norm=True, block_size=32)
_ZL_TRAIN = TrainConfig(steps=200, batch_size=16, seq_len=32, lr=0.1, weight_decay=0.0, warmup=0,
                        schedule="constant")
_add(Recipe(
    "logit_drift", "output-logit (log-partition) drift without z-loss at high LR (Wortsman et al. 2023)",
    "cycle", _ZL, _ZL_TRAIN, _ZL, replace(_ZL_TRAIN, z_loss=1e-2),
    "z-loss 1e-2·log²Z", ("output logit divergence",), monitor=MonitorConfig(every=10)))

_NAN_TRAIN = TrainConfig(steps=60, batch_size=16, seq_len=64, lr=3e-3, dtype="float16")
_add(Recipe(
    "nan_loss", "NaN loss in pure fp16 training (AdamW's eps=1e-8 underflows to 0 in fp16)",
    "stdlib_chars", _CHAR, _NAN_TRAIN, _CHAR, replace(_NAN_TRAIN, dtype="bfloat16", grad_clip=1.0),
    "bf16 + gradient clipping", ("numerical instability",), monitor=MonitorConfig(every=10)))


@dataclass
class TwinOutcome:
    """One run of a recipe: which categories fired and when, plus headline numbers."""

    mitigated: bool
    fired: dict[str, int]
    val_loss: float
    nan_step: int | None
    seconds: float
    numbers: dict
    findings: list = field(default_factory=list)
    cpu_seconds: float = 0.0  # process CPU time: the wall time of a single-threaded run on an idle machine


_HEADLINE = ("attn.entropy.min", "attn.max_logit", "out.log_z", "grad.depth_ratio", "attn.sink_share",
             "attn.sink_mass.L0",
             "pos.equivariance_error", "pos.extrapolation_gap")


def run_twin(recipe: Recipe, mitigated: bool, store=None, run_id: str | None = None,
             steps: int | None = None) -> tuple[TwinOutcome, TrainResult, HealthMonitor]:
    """Train one twin of `recipe` under a `HealthMonitor`; `steps` overrides the step count."""
    task = tasks.get(recipe.task)(**recipe.task_kwargs)
    mcfg = recipe.mitigated_model if mitigated else recipe.model
    tcfg = recipe.mitigated_train if mitigated else recipe.train
    if steps is not None:
        tcfg = replace(tcfg, steps=steps)
    eval_batch = None
    if recipe.eval_len:
        eval_batch, _ = task.sample(torch.Generator().manual_seed(123), 8, recipe.eval_len, "val")
    mon = HealthMonitor(recipe.monitor, store=store, run_id=run_id, eval_batch=eval_batch,
                        train_length=tcfg.seq_len)
    t0, c0 = time.perf_counter(), time.process_time()
    res = train(mcfg, tcfg, task, [mon])
    cpu = time.process_time() - c0
    numbers = {}
    for name in _HEADLINE:  # the last recorded value of each headline event
        vals = [v for _, n, v in mon.events if n == name]
        if vals:
            numbers[name] = vals[-1]
    fired = {f.category: f.evidence["step"] for f in mon.findings}
    out = TwinOutcome(mitigated, fired, res.val_loss, res.nan_step, time.perf_counter() - t0, numbers,
                      [f.message for f in mon.findings], cpu)
    return out, res, mon


def run_recipe(name: str, store=None) -> dict:
    """Both twins of a recipe; `ok` is True iff every expected category fired on the
    pathological run and none of them on the mitigated twin."""
    r = recipes.get(name)
    path, _, _ = run_twin(r, False, store)
    mit, _, _ = run_twin(r, True, store)
    ok = all(c in path.fired for c in r.expected) and not any(c in mit.fired for c in r.expected)
    return {"recipe": name, "ok": ok, "expected": list(r.expected), "pathological": asdict(path),
            "mitigated": asdict(mit), "mitigation": r.mitigation}
