"""Typed settings of the training-health monitor: sampling and the thresholds of every check.

Threshold defaults come from the measured CPU runs in ../shared/notes/dynamics.md (healthy vs
pathological twins); each is a field so a user can tighten or loosen one check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Thresholds:
    """When each check raises its finding.

    Attributes:
        entropy_floor: min over heads of the mean normalised attention entropy H/ln(n) below
            which a head has collapsed (Zhai et al. 2023); healthy tiny LMs sit at 0.3-0.9.
        max_logit: largest |q·k|/√d_h above which attention logits have grown out of range
            (Dehghani et al. 2023); healthy and qk-normed runs stay at 5-30.
        log_z_drift: growth of |mean log Z| above its first sampled value, in nats (output-logit divergence,
            Wortsman et al. 2023; z-loss keeps log Z near 0).
        grad_ratio: max/min per-block gradient norm across depth (healthy ≤ ~10; the failing
            Post-LN stack reaches 1e3-1e4, Xiong et al. 2020).
        grad_explode: total gradient norm above this multiple of its median so far.
        divergence: loss (EMA) rising this many nats above its best EMA value.
        oscillation_spikes: number of loss spikes (> `spike_frac` above the running median)
            within the last `window` steps that counts as oscillation.
        rank_uniformity: token uniformity ||X - 1x̄ᵀ||/||X|| of the last monitored layer below
            which the residual stream has collapsed to rank one (Dong et al. 2021).
        sink_share: share of (layer, head) pairs whose mean attention on key 0 exceeds
            `sink_alpha` (Gu et al. 2024 Sink^ε with ε = 0.3).
        lazy_cos: cos(X, X + Attn(X)) at or above which an attention layer is lazy (He et al. 2024).
        order_error: permutation-equivariance error below which the model is order blind.
        extrapolation_gap: CE past the training length minus CE within it, in nats.
        patience: consecutive sampled violations required before a sampled check fires.
    """

    entropy_floor: float = 0.05
    max_logit: float = 50.0
    log_z_drift: float = 5.0
    grad_ratio: float = 100.0
    grad_explode: float = 100.0
    divergence: float = 0.5
    spike_frac: float = 0.5
    oscillation_spikes: int = 3
    window: int = 50
    rank_uniformity: float = 0.05
    sink_share: float = 0.25
    sink_alpha: float = 0.3
    lazy_cos: float = 0.97
    order_error: float = 1e-3
    extrapolation_gap: float = 0.5
    patience: int = 2


@dataclass(frozen=True)
class MonitorConfig:
    """Sampling and selection.

    Attributes:
        every: run the probe-batch checks and gradient checks every `every` steps (and at
            step 0); the loss and non-finite checks run on every step (they cost one float).
        checks: check names to run, or ("all",).
        max_layers: monitor at most this many layers, evenly spaced, always first and last.
        probe_size / probe_len: the fixed probe batch taken from the first training batch.
        tensorboard_dir: also write events as TensorBoard scalars there.
        flush_every: write buffered events to the store every this many steps.
    """

    every: int = 25
    checks: tuple[str, ...] = ("all",)
    max_layers: int = 4
    probe_size: int = 4
    probe_len: int = 64
    tensorboard_dir: str | None = None
    flush_every: int = 200
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict:
        return asdict(self)
