"""Attention statistics from captured q and k without materialising the ``[T, S]`` pattern:
every statistic of one layer in a single pass over query blocks.

For a block of R queries the exact scores against all keys they can see are formed
(``[B, H, R, W]``), masked and soft-maxed in-row, and every statistic is read off that one
probability tile before it is dropped:

* entropy per query ``H_i = log Z_i − Σ_j p_ij l_ij`` (normalised by ``ln n_i``) and the max logit;
* per-key mass ``Σ_i p_ij`` (sink mass / absolute-position profile: Gu et al. 2024 α is this
  divided by the number of queries that see key j) and the α uniform attention would give;
* the relative-distance profile ``Σ_i p_{i, i−d}``, without a scatter: the tile carries
  P >= R masked pad columns on its left, so a strided view with row stride W + 1 lines every row up by
  distance (the "skew" trick of relative-position attention, Huang et al. 2018, Music Transformer
  §3.4.1) and one column sum gives the profile;
* mass on a key span (a mat-vec) and head redundancy (Gram matrix ``Σ_ij p_h p_g`` → cosine).

Work per block is only the keys up to the block's last query (and, with a sliding window, from
its first query's window start), so a causal layer costs about half a dense pass; memory is
O(B·H·R·(S + R)) instead of O(B·H·T·S). (An earlier version walked key blocks with a running
max / sum, then recomputed every logit and exp in a second pass for the mass statistics: about
3× slower; query blocks need no running state because each row is complete in its tile.)
The probabilities are the model kernel's own: q/k after RoPE, its scaling,
softcap, mask, sliding window and grouped-query layout, as `faultlens.capture` hands them over.
Causal models only: a key after its query is never visible (the mask of a decoder guarantees it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class StreamConfig:
    """How the streamed pass runs.

    Attributes:
        block: queries per block; the probability tile is ``[B, H, block, S + block]`` floats
            (64 was fastest on CPU at S = 2048: the tile stays in cache).
        mass: also the mass statistics (sink mass, distance profile, key-span mass, head
            redundancy); without them only entropy and max logit.
        profile: with `mass`, also the mass-by-distance profile.
        workers: threads that split the query blocks (None = ``torch.get_num_threads()``). Each
            runs its ops single-threaded: per-op parallelism over small tiles puts a barrier in
            every op, and on a shared, loaded CPU one descheduled thread stalls all of them
            (measured 3.7× a plain forward at 2 threads vs 0.6× at 1).
    """

    block: int = 64
    mass: bool = True
    profile: bool = True
    workers: int | None = None


def visible_block(
    mask: Tensor | None, T: int, S: int, k0: int, k1: int, key_mask: Tensor | None,
    sliding_window: int | None, device, q0: int = 0, q1: int | None = None,
) -> Tensor:
    """Bool ``[B|1, 1, q1-q0, k1-k0]``: which keys of block [k0, k1) queries [q0, q1) may see.

    Uses the kernel's own mask when it got one (boolean = attend, or additive with the dtype's
    minimum where masked); otherwise causal (plus sliding window) like SDPA's ``is_causal``.
    Padding keys and padding queries (from ``key_mask [B, S]``) are always excluded. Query
    indices count the T queries, which are the last T of the S key positions.
    """
    q1 = T if q1 is None else q1
    if mask is not None:
        mb = mask[..., k0:k1]
        vis = mb if mb.dtype == torch.bool else mb > torch.finfo(mb.dtype).min / 2
        if vis.shape[-2] != 1:  # one row broadcasts to every query
            r0 = vis.shape[-2] - T  # a mask may cover earlier (cached) query rows too
            vis = vis[..., r0 + q0:r0 + q1, :]
    else:
        qpos = torch.arange(S - T + q0, S - T + q1, device=device)[:, None]  # [Tq, 1]
        kpos = torch.arange(k0, k1, device=device)[None, :]  # [1, bk]
        vis = kpos <= qpos  # [Tq, bk]
        if sliding_window:
            vis = vis & (qpos - kpos < sliding_window)
        vis = vis[None, None]  # [1, 1, Tq, bk]
    if key_mask is not None:
        km = key_mask.to(device).bool()  # [B, S]
        vis = vis & km[:, None, None, k0:k1] & km[:, None, S - T + q0:S - T + q1, None]
    return vis


# Masked logits get a large finite negative: exp underflows to exactly 0 and 0·l stays finite
# (a true -inf would give 0·inf = NaN in Σ p·l).
_BIG = -1e30


def _tile(qs: Tensor, kpad: Tensor, vis: Tensor, R: int, P: int, softcap: float | None) -> tuple[Tensor, Tensor]:
    """Masked logits ``[B, H, R, P + K]`` of R grouped queries against P pad columns + K keys.

    Args:
        qs: the block's scaled queries ``[B, H, R, dh]``; kpad: ``[B, Hkv, P + K, dh]``.
        vis: ``[B|1, 1, R, K]`` visibility of the K keys.

    Returns:
        (logits with every invisible entry and the pad columns at `_BIG`, max logit ``[B, H, R]``).
    """
    B, H, _, dh = qs.shape
    Hkv, W = kpad.shape[1], kpad.shape[2]
    qg = qs.reshape(B, Hkv, (H // Hkv) * R, dh)  # [B, Hkv, g*R, dh]: no copy of k per head
    lg = torch.matmul(qg, kpad.transpose(-1, -2)).view(B, H, R, W)  # [B, H, R, W]
    if softcap:
        lg.div_(softcap).tanh_().mul_(softcap)
    lg[..., :P] = _BIG
    bad = (~vis).flatten(0, 2).any(0).nonzero()  # key columns some query cannot see
    if len(bad):
        c0 = int(bad[0])  # causal without padding: only the diagonal square needs the mask
        lg[..., P + c0:].masked_fill_(~vis[..., c0:], _BIG)
    return lg, lg.amax(-1)


def _skew_sum(x: Tensor, R: int, L: int) -> Tensor:
    """``out[n, d]``: the mass rows of a causal tile put at distance d = 0..L-1 from their query.

    ``x [N, R, W]`` is contiguous, its first P >= R columns are zero (pad) and row r's query is
    at column W − R + r (the tile's last key column belongs to the last query). The view
    ``Z[r, c] = x[r, c + r]`` (row stride W + 1) puts distance ``W − R − c`` in column c for
    every row at once, so one column sum gives the profile, without a scatter (Huang et al. 2018,
    Music Transformer §3.4.1, the "skewing" trick). Entries right of a row's query (future keys)
    would fall off the view: they must be zero, as causality makes them.
    """
    N, _, W = x.shape
    z = x.as_strided((N, R, W - R + 1), (R * W, W + 1, 1), x.storage_offset())
    return z.sum(-2).flip(-1)[:, :L]  # [N, L]


class _Sums:
    """One worker's sums over its query blocks; workers' sums are added (``mx``: maxed)."""

    def __init__(self, B: int, H: int, S: int, P: int, dev, mass: bool, profile: bool) -> None:
        self.mx = torch.full((B, H), float("-inf"), device=dev)
        if mass:
            self.col = torch.zeros(B, H, P + S, device=dev)  # Σ_i p_ij; key j at column P + j
            self.viewers = torch.zeros(B, 1, P + S, device=dev)  # queries that see key j
            self.uniform = torch.zeros(B, 1, P + S, device=dev)  # Σ_i vis_ij / n_i
            self.gram = torch.zeros(B, H, H, device=dev)  # Σ_ij p_h · p_g
        if profile:
            self.rel = torch.zeros(B * H, S, device=dev)  # Σ p at distance d
            self.rel_n = torch.zeros(B, S, device=dev)  # (query, key) pairs at distance d

    def merge(self, other: _Sums) -> None:
        self.mx = torch.maximum(self.mx, other.mx)
        for name in ("col", "viewers", "uniform", "gram", "rel", "rel_n"):
            if hasattr(self, name):
                getattr(self, name).add_(getattr(other, name))


@dataclass
class _Layer:
    """What every block of one layer reads (and the per-query outputs blocks write disjointly)."""

    qs: Tensor  # [B, H, T, dh] scaled queries
    kpad: Tensor  # [B, Hkv, P+S, dh] P zero rows, then the keys
    mask: Tensor | None
    key_mask: Tensor | None
    window: int | None
    softcap: float | None
    in_span: Tensor | None  # [B, P+S] float
    ent: Tensor  # [B, H, T]
    n_vis: Tensor  # [B, 1, T]
    span: Tensor | None  # [B, H, T]
    P: int
    mass: bool
    profile: bool


def _block(L: _Layer, q0: int, q1: int, acc: _Sums) -> None:
    """All statistics of queries [q0, q1) from their one probability tile."""
    B, H, T, _ = L.qs.shape
    S, P, nan = L.kpad.shape[2] - L.P, L.P, float("nan")
    R, off = q1 - q0, S - T
    k1 = off + q1  # causal: no query of the block sees a key at or after k1
    k0 = max(0, off + q0 - L.window + 1) if L.window else 0
    W = P + k1 - k0  # tile columns: P pad columns (keys k0-P.. or zeros), then keys [k0, k1)
    vis = visible_block(L.mask, T, S, k0, k1, L.key_mask, L.window, L.qs.device, q0, q1)  # [B|1, 1, R|1, K]
    vis = vis.expand(-1, -1, R, -1)
    lg, m = _tile(L.qs[:, :, q0:q1], L.kpad[:, :, k0:k1 + P], vis, R, P, L.softcap)  # [B, H, R, W], [B, H, R]
    n = vis.sum(-1, dtype=torch.float32)  # [B|1, 1, R]
    p = torch.softmax(lg, dim=-1)  # [B, H, R, W]
    # Shannon entropy H = log Z − Σ p·l. log Z = m − log p_max (the arg-max key has
    # p = e^(m − log Z)): exact, and no second exp pass (logsumexp is unfused on CPU).
    h = (m - torch.log(p.amax(-1))) - torch.einsum("bhrw,bhrw->bhr", p, lg)  # [B, H, R]
    seen = n > 0
    if not bool(seen.all()):  # padding queries see nothing: their rows carry no mass
        p.mul_(seen[..., None])
        m = m.masked_fill(~seen, float("-inf"))
    L.ent[..., q0:q1] = (h / torch.log(n.clamp_min(2.0))).masked_fill(n <= 1, nan)
    L.n_vis[..., q0:q1] = n
    acc.mx = torch.maximum(acc.mx, m.amax(-1))
    if not L.mass:
        return
    acc.col[..., k0:k1 + P] += p.sum(-2)
    visf = torch.cat([vis.new_zeros(*vis.shape[:-1], P), vis], -1).float()  # [B|1, 1, R, W]
    acc.viewers[..., k0:k1 + P] += visf.sum(-2)
    acc.uniform[..., k0:k1 + P] += (visf / n.clamp_min(1)[..., None]).sum(-2)
    if L.profile:
        d = min(S, W - R + 1)
        acc.rel[:, :d] += _skew_sum(p.view(B * H, R, W), R, d)
        acc.rel_n[:, :d] += _skew_sum(visf.reshape(-1, R, W), R, d)  # [B|1, d]
    pf = p.view(B, H, R * W)
    acc.gram += torch.matmul(pf, pf.transpose(-1, -2))
    if L.span is not None:
        sp = torch.matmul(p, L.in_span[:, None, k0:k1 + P, None]).squeeze(-1)  # [B, H, R]
        L.span[..., q0:q1] = sp.masked_fill(~seen, nan)


_POOLS: dict[int, ThreadPoolExecutor] = {}  # by size; threads live as long as the process


def _work(L: _Layer, blocks: list[tuple[int, int]], acc: _Sums) -> _Sums:
    torch.set_num_threads(1)  # this worker's ops run inline (set per task: the setting is per thread)
    with torch.inference_mode():
        for q0, q1 in blocks:
            _block(L, q0, q1, acc)
    return acc


def _split(blocks: list[tuple[int, int]], cost, n: int) -> list[list[tuple[int, int]]]:
    """Longest-processing-time split of blocks over n workers (cost = tile size)."""
    groups, load = [[] for _ in range(n)], [0.0] * n
    for b in sorted(blocks, key=cost, reverse=True):
        i = load.index(min(load))
        groups[i].append(b)
        load[i] += cost(b)
    return [g for g in groups if g]


@torch.no_grad()
def attention_stats(
    q: Tensor, k: Tensor, scaling: float, mask: Tensor | None = None, key_mask: Tensor | None = None,
    sliding_window: int | None = None, softcap: float | None = None, spans: tuple[Tensor, Tensor] | None = None,
    config: StreamConfig = StreamConfig(),
) -> dict[str, Tensor]:
    """Per-head attention statistics of one layer in one pass over query blocks.

    Args:
        q: queries after RoPE ``[B, H, T, dh]`` (the last T of the S key positions).
        k: keys after RoPE ``[B, Hkv, S, dh]`` (head h uses kv head h // (H/Hkv)).
        scaling, mask, sliding_window, softcap: what the model's kernel got (mask None = causal).
        key_mask: ``[B, S]`` real-token mask.
        spans: optional ``(start [B], end [B])`` absolute key spans for ``span_mass``.
        config: block size, mass statistics and distance profile or not, worker threads.

    Returns:
        ``entropy [B, H, T]`` (H_i / ln n_i, NaN where n_i <= 1), ``max_logit [B, H]``,
        ``n_visible [B, 1, T]``; with `config.mass` also ``sink_mass [B, H, S]`` (Gu α, NaN where
        unseen), ``sink_baseline [B, 1, S]`` (the α uniform attention would give), ``relative
        [B, H, S]`` (mean mass at distance d; with `config.profile`), ``redundancy [B, H, H]``
        (cosine of heads' patterns) and, given spans, ``span_mass [B, H, T]``.
    """
    B, H, T, dh = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    P, dev, nan = config.block, q.device, float("nan")
    mass, profile = config.mass, config.mass and config.profile
    in_span = span = None
    if spans is not None and mass:
        kp = torch.arange(-P, S, device=dev)[None, :]  # [1, P+S]
        in_span = ((kp >= spans[0].to(dev)[:, None]) & (kp < spans[1].to(dev)[:, None])).float()  # [B, P+S]
        span = torch.full((B, H, T), nan, device=dev)
    L = _Layer(
        qs=q.float() * scaling,  # the scaling folded into q once
        kpad=torch.cat([k.new_zeros(B, Hkv, P, dh, dtype=torch.float32), k.float()], dim=2),
        mask=mask, key_mask=key_mask, window=sliding_window, softcap=softcap, in_span=in_span,
        ent=torch.full((B, H, T), nan, device=dev), n_vis=torch.zeros(B, 1, T, device=dev), span=span,
        P=P, mass=mass, profile=profile,
    )
    blocks = [(a, min(a + P, T)) for a in range(0, T, P)]
    n_work = min(config.workers or torch.get_num_threads(), len(blocks))
    if n_work <= 1 or dev.type != "cpu":
        acc = _Sums(B, H, S, P, dev, mass, profile)
        for q0, q1 in blocks:
            _block(L, q0, q1, acc)
    else:
        def cost(b: tuple[int, int]) -> int:  # tile size: rows × (keys up to the last query + pad)
            return (b[1] - b[0]) * (S - T + b[1] + P)

        groups = _split(blocks, cost, n_work)
        threads = torch.get_num_threads()
        if len(groups) not in _POOLS:
            _POOLS[len(groups)] = ThreadPoolExecutor(len(groups), thread_name_prefix="faultlens-attn")
        pool = _POOLS[len(groups)]
        try:
            parts = [f.result() for f in [pool.submit(_work, L, g, _Sums(B, H, S, P, dev, mass, profile))
                                          for g in groups]]
        finally:
            torch.set_num_threads(threads)  # workers set the process-wide BLAS count to 1
        acc = parts[0]
        for other in parts[1:]:
            acc.merge(other)
    out = {"entropy": L.ent, "max_logit": acc.mx, "n_visible": L.n_vis}
    if not mass:
        return out
    viewers, col, uniform = acc.viewers[..., P:], acc.col[..., P:], acc.uniform[..., P:]
    out["sink_mass"] = (col / viewers).masked_fill(viewers == 0, nan)
    out["sink_baseline"] = (uniform / viewers).masked_fill(viewers == 0, nan)  # [B, 1, S]
    if profile:
        rel = acc.rel.view(B, H, S)
        out["relative"] = (rel / acc.rel_n[:, None]).masked_fill(acc.rel_n[:, None] == 0, nan)
    norm = torch.diagonal(acc.gram, dim1=-2, dim2=-1).sqrt().clamp_min(1e-12)  # [B, H]
    out["redundancy"] = acc.gram / (norm[..., :, None] * norm[..., None, :])  # [B, H, H]
    if span is not None:
        out["span_mass"] = span
    return out
