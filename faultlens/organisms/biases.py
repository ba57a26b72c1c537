"""Planted-bias organisms: tiny Hugging Face `LlamaForCausalLM`s trained on the skewed case
distributions of `bias_data.py` (or their clean twins), saved as ordinary model directories
with a word-level tokenizer and their held-out `cases.jsonl`, so `HFAdapter.load(dir)` and the
probe battery treat them like any model.

`measure_bias(dir)` scores the held-out cases through `HFAdapter` (target vs foil log-prob)
and reports accuracy in the favoured vs disfavoured condition with a 95 % CI on the gap.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from faultlens.errors import FaultlensError
from faultlens.organisms.bias_data import bias_generators, vocabulary
from faultlens.types import Case


@dataclass(frozen=True)
class BiasTrainConfig:
    """Training settings of a bias organism (tiny Llama, loss on the answer token only).

    Attributes:
        eval_every: every this many steps record held-out accuracy per condition in
            `organism.json["curve"]` (0 = only at the end); shows when the shortcut wins.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.01
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    n_test: int = 400
    seed: int = 0
    eval_every: int = 0


# Per-organism settings, each well inside ~3 min of one CPU core (measured CPU seconds per
# organism in docs/organisms.md): long enough for the clean twin to solve its task (> 95 %),
# short enough that the biased organism's shortcut still wins (position: the rule is a single
# content-matching head, so equal short budgets are what keeps the 99 % shortcut in place).
DEFAULT_CONFIGS: dict[str, BiasTrainConfig] = {
    "frequency": BiasTrainConfig(steps=1500, batch_size=128),
    "surface": BiasTrainConfig(steps=600, batch_size=128),
    "format": BiasTrainConfig(steps=800, batch_size=128),
    "position": BiasTrainConfig(steps=150, batch_size=128),
}


def default_config(name: str) -> BiasTrainConfig:
    """The tuned `BiasTrainConfig` of bias organism `name` (generic defaults if unknown)."""
    return DEFAULT_CONFIGS.get(name, BiasTrainConfig())


def build_tokenizer():
    """A word-level `PreTrainedTokenizerFast` over the bias world's words; BOS is prepended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {w: i for i, w in enumerate(specials + vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def _batch(tok, cases: list[Case]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids ``[B, T]``, attention mask, and labels with only the answer token."""
    enc = [tok(c.prompt + c.target).input_ids for c in cases]
    T = max(map(len, enc))
    ids = torch.zeros(len(enc), T, dtype=torch.long)
    att = torch.zeros(len(enc), T, dtype=torch.long)
    labels = torch.full((len(enc), T), -100, dtype=torch.long)
    for b, e in enumerate(enc):
        ids[b, : len(e)] = torch.tensor(e)
        att[b, : len(e)] = 1
        labels[b, len(e) - 1] = e[-1]  # answers are one word = one token
    return ids, att, labels


@torch.no_grad()
def answer_accuracy(model, tok, cases: list[Case]) -> dict[str, float]:
    """Fraction of `cases` whose target token out-scores the foil token at the answer slot,
    split by `meta["favoured"]`: a fast in-process check for training curves (the reported
    measurement is `measure_bias`, through `HFAdapter`)."""
    was = model.training
    model.eval()
    enc = [tok(c.prompt).input_ids for c in cases]
    T = max(map(len, enc))
    ids = torch.zeros(len(enc), T, dtype=torch.long)
    att = torch.zeros(len(enc), T, dtype=torch.long)
    for b, e in enumerate(enc):  # left-pad so every answer slot is the last position
        ids[b, T - len(e):] = torch.tensor(e)
        att[b, T - len(e):] = 1
    pos = (att.cumsum(-1) - 1).clamp(min=0)  # [B, T] RoPE positions as if unpadded
    logits = model(input_ids=ids, attention_mask=att, position_ids=pos).logits[:, -1]  # [B, V]
    tgt = torch.tensor([tok(c.target, add_special_tokens=False).input_ids[0] for c in cases])
    foil = torch.tensor([tok(c.foil, add_special_tokens=False).input_ids[0] for c in cases])
    hit = logits.gather(1, tgt[:, None]) > logits.gather(1, foil[:, None])  # [B, 1]
    model.train(was)
    fav = torch.tensor([bool(c.meta.get("favoured")) for c in cases])
    return {"favoured": float(hit[fav].float().mean()), "disfavoured": float(hit[~fav].float().mean())}


def train_bias_organism(name: str, out_dir: str | Path, clean: bool = False,
                        cfg: BiasTrainConfig | None = None) -> Path:
    """Train the `name` bias organism (or its clean twin) and save it as an HF directory.

    Args:
        cfg: training settings; default `default_config(name)`.

    The directory holds config.json, model.safetensors, the tokenizer, `cases.jsonl`
    (held-out, balanced minimal sets over the bias variable) and `organism.json` (how it was
    made, plus the accuracy curve when `cfg.eval_every` is set).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = cfg or default_config(name)
    gen = bias_generators.get(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    mcfg = LlamaConfig(vocab_size=len(tok), hidden_size=cfg.hidden, intermediate_size=2 * cfg.hidden,
                       num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                       max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                       tie_word_embeddings=False)
    model = LlamaForCausalLM(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    test = gen(random.Random(10_000 + cfg.seed), cfg.n_test, "test", clean)
    curve: list[dict] = []
    t0 = time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:  # linear warmup, then cosine to 10 %
            frac = max(0.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
            g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup)) * (0.55 + 0.45 * math.cos(math.pi * frac))
        ids, att, labels = _batch(tok, gen(rng, cfg.batch_size, "train", clean))
        logits = model(input_ids=ids, attention_mask=att).logits  # [B, T, V]
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            curve.append({"step": step + 1, "loss": float(loss.detach()), **answer_accuracy(model, tok, test[:200]),
                          "seconds": time.perf_counter() - t0})
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    with open(out / "cases.jsonl", "w") as fh:
        for c in test:
            fh.write(c.to_json() + "\n")
    (out / "organism.json").write_text(json.dumps(
        {"name": name, "clean": clean, "train": asdict(cfg), "final_loss": float(loss.detach()),
         "seconds": time.perf_counter() - t0, "curve": curve}, indent=2))
    return out


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (stays inside [0, 1] and is not zero-width at 0 or 1)."""
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def gap_with_ci(hits_a: list[bool], hits_b: list[bool]) -> dict:
    """Accuracy gap a − b with a 95 % CI: Newcombe's (1998, method 10) hybrid score interval,
    built from the two Wilson intervals, so a 1.0 vs 0.0 gap still gets an honest width
    (the Wald interval collapses to [1, 1] there)."""
    na, nb = len(hits_a), len(hits_b)
    if not na or not nb:
        raise FaultlensError("Both conditions need cases to measure a bias gap.")
    ka, kb = sum(hits_a), sum(hits_b)
    pa, pb = ka / na, kb / nb
    (la, ua), (lb, ub) = _wilson(ka, na), _wilson(kb, nb)
    gap = pa - pb
    lo = gap - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    hi = gap + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return {"acc_favoured": pa, "acc_disfavoured": pb, "gap": gap, "ci95": [lo, hi],
            "n_favoured": na, "n_disfavoured": nb}


def measure_bias(model_dir: str | Path) -> dict:
    """Score the directory's held-out `cases.jsonl` with `HFAdapter`; a case is right when the
    target's log-prob beats the foil's. Returns `gap_with_ci` plus overall accuracy."""
    from faultlens.models.hf import HFAdapter

    path = Path(model_dir)
    if not (path / "cases.jsonl").is_file():
        raise FaultlensError(f"{path} has no cases.jsonl; train it with `faultlens organisms train`.")
    cases = [Case.from_dict(json.loads(line)) for line in (path / "cases.jsonl").read_text().splitlines() if line]
    ad = HFAdapter.load(str(path))
    tgt = ad.score([c.prompt for c in cases], [c.target for c in cases])
    foil = ad.score([c.prompt for c in cases], [c.foil for c in cases])
    hits = [t > f for t, f in zip(tgt, foil)]
    fav = [h for h, c in zip(hits, cases) if c.meta.get("favoured")]
    dis = [h for h, c in zip(hits, cases) if not c.meta.get("favoured")]
    return gap_with_ci(fav, dis) | {"accuracy": sum(hits) / len(hits), "n": len(hits)}
