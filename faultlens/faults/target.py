"""What the fault checks run on: a `Target` wraps either a user attention module or an HF model.

Accepted targets
----------------
* **HF model** (a local directory, or a ``PreTrainedModel`` object): a causal LM (GPT-2, Llama,
  Mistral, Qwen2, GPT-NeoX, ...) or an encoder (BERT). Inputs are token ids; outputs are logits
  (or the last hidden state for a bare encoder). Attention runs through SDPA during checks.
* **Module** (`nn.Module`): ``forward(x, attention_mask=None)`` where ``x`` is ``[B, T, D]`` float
  and ``attention_mask`` is ``[B, T]`` with 1 for real tokens and 0 for padding; it returns a tensor
  of x's shape (or a tuple whose first item is one). ``attention_mask`` is optional in the signature
  (padding checks are then skipped). Optional attributes tell the checker what to expect:
  ``is_causal`` (bool), ``positional`` (bool: has positional encoding), ``num_heads`` /
  ``num_kv_heads``, ``d_model``, ``sliding_window``. Projections named ``q_proj/k_proj/v_proj`` or
  ``query/key/value`` enable weight-level checks; calling ``F.scaled_dot_product_attention``
  enables kernel-level checks.
"""

from __future__ import annotations

import copy
import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from faultlens.errors import FaultlensError
from faultlens.faults.projections import Projections, find_projections


@dataclass
class Target:
    """Common interface the checks use (see module docstring for the conventions)."""

    name: str
    module: nn.Module
    kind: str  # "hf" | "module"
    causal: bool | None
    positional: bool | None
    attn: list[nn.Module] = field(default_factory=list)  # attention modules, layer order
    factory: Callable[[], nn.Module] | None = None
    takes_mask: bool = True
    d_model: int = 0

    # ------------------------------------------------------------------ inputs
    def sample(self, B: int = 2, T: int = 12, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if self.kind == "hf":
            return torch.randint(3, self.vocab, (B, T), generator=g)
        return torch.randn(B, T, self.d_model, generator=g)  # [B, T, D]

    def perturb(self, x: torch.Tensor, positions: list[int] | slice, seed: int = 1) -> torch.Tensor:
        """A copy of x whose tokens at `positions` are replaced by other random ones."""
        y = x.clone()
        other = self.sample(x.shape[0], x.shape[1], seed)
        y[:, positions] = other[:, positions]
        if self.kind == "hf":  # make sure every chosen token actually changes
            same = y[:, positions] == x[:, positions]
            y[:, positions] = torch.where(same, (y[:, positions] + 1 - 3) % (self.vocab - 3) + 3, y[:, positions])
        return y

    def pad(self, x: torch.Tensor, left: int, right: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """x with `left`/`right` pad positions added, and the keep mask ``[B, T']`` (1 = real)."""
        B, T = x.shape[:2]
        filler = self.sample(B, left + right, seed)
        xp = torch.cat([filler[:, :left], x, filler[:, left:]], dim=1)
        mask = torch.zeros(B, T + left + right, dtype=torch.long)
        mask[:, left:left + T] = 1
        return xp, mask

    # ------------------------------------------------------------------ running
    @property
    def vocab(self) -> int:
        return int(self.module.config.vocab_size)

    def run(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
            position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs ``[B, T, *]`` (logits, hidden states or the module's output) as float32."""
        if self.kind == "hf":
            kw = {"input_ids": x}
            if attention_mask is not None:
                kw["attention_mask"] = attention_mask
            if position_ids is not None:
                kw["position_ids"] = position_ids
            if self.causal:
                kw["use_cache"] = False
            out = self.module(**kw)
            t = getattr(out, "logits", None)
            return (t if t is not None else out.last_hidden_state).float()
        out = self.module(x, attention_mask=attention_mask) if attention_mask is not None else self.module(x)
        return (out[0] if isinstance(out, (tuple, list)) else out).float()

    @property
    def supports_cache(self) -> bool:
        return self.kind == "hf" and bool(self.causal)

    @property
    def rope(self) -> bool:
        return any("rotary" in n.lower() for n, _ in self.module.named_modules())

    def projections(self) -> list[Projections | None]:
        return [find_projections(a) for a in self.attn]

    def expected_window(self, layer: int) -> int | None:
        """Sliding window the config asks for on `layer` (None = full attention)."""
        cfg = getattr(self.module, "config", None)
        if cfg is None:
            return getattr(self.module, "sliding_window", None)
        w = getattr(cfg, "sliding_window", None)
        types = getattr(cfg, "layer_types", None)
        if types is not None and layer < len(types):
            return w if types[layer] == "sliding_attention" else None
        return w if w and getattr(cfg, "use_sliding_window", True) else None

    def fresh(self) -> nn.Module:
        """A newly built twin with freshly initialised weights (for the state-dict round trip)."""
        if self.kind == "hf":
            cfg = copy.deepcopy(self.module.config)
            return type(self.module)(cfg).eval()
        if self.factory is None:
            raise FaultlensError("no factory to rebuild the module")
        return self.factory().eval()

    @contextmanager
    def eval_mode(self) -> Iterator[None]:
        was = self.module.training
        self.module.eval()
        try:
            yield
        finally:
            self.module.train(was)


# ---------------------------------------------------------------------- construction
def from_hf(model: nn.Module, name: str = "model") -> Target:
    """Wrap a transformers model (switched to SDPA attention so kernel checks can see it)."""
    from faultlens.capture import attention_modules

    if getattr(model.config, "_attn_implementation", "sdpa") != "sdpa" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("sdpa")
    try:
        attn = attention_modules(model)
    except FaultlensError:
        raise FaultlensError(f"{name}: cannot find the attention layers of {type(model).__name__}; "
                             "pass a file.py:factory returning the attention module instead.") from None
    causal = any(bool(getattr(m, "is_causal", False)) for a in attn for m in a.modules())
    return Target(name, model.eval(), "hf", causal, True, attn, d_model=int(model.config.hidden_size))


def from_module(module: nn.Module, name: str = "module", factory: Callable | None = None) -> Target:
    """Wrap a user attention module after checking its call convention on a tiny input."""
    sig = inspect.signature(getattr(module.forward, "_faultlens_orig", module.forward))
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_pos = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    takes_mask = "attention_mask" in sig.parameters or any(
        p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    required = [p for p in params[1:] if p.default is p.empty and p.name != "attention_mask"]
    if (not params and not var_pos) or required:
        raise FaultlensError(
            f"{name}: forward{sig} is not supported; it must be forward(x, attention_mask=None) "
            "taking x [B, T, D] (see `faultlens check --help`), so wrap your layer in a module with that signature.")
    d = getattr(module, "d_model", None) or getattr(module, "embed_dim", None) or getattr(module, "hidden_size", None)
    if d is None:
        lin = next((m for m in module.modules() if isinstance(m, nn.Linear)), None)
        if lin is None:
            raise FaultlensError(f"{name}: cannot tell the model width; set `d_model` on the module.")
        d = lin.in_features
    causal = getattr(module, "is_causal", None)
    positional = getattr(module, "positional", None)
    t = Target(name, module.eval(), "module", None if causal is None else bool(causal),
               None if positional is None else bool(positional), [module], factory, takes_mask, int(d))
    x = t.sample(2, 5)
    try:
        with torch.no_grad():
            y = t.run(x, torch.ones(2, 5, dtype=torch.long) if takes_mask else None)
    except Exception as exc:  # noqa: BLE001 - any failure here is a convention mismatch
        raise FaultlensError(f"{name}: forward(x [2, 5, {d}], attention_mask [2, 5]) failed ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}); make it accept that call.") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise FaultlensError(f"{name}: forward must return a tensor shaped like x {tuple(x.shape)}, "
                             f"got {getattr(y, 'shape', type(y).__name__)}; return the attention output.")
    return t


def load_target(spec: str) -> Target:
    """A target from the CLI: an HF model directory (or shipped name) or ``path/to/file.py:factory``."""
    from pathlib import Path

    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        return _from_factory(*spec.rsplit(":", 1))
    if spec.endswith(".py"):
        raise FaultlensError(f"{spec}: name the factory too, as {spec}:make_module (a zero-argument callable).")
    from faultlens.models.loading import check_model_dir

    path = check_model_dir(spec)
    cfg = __import__("json").loads((path / "config.json").read_text())
    arch = (cfg.get("architectures") or [""])[0]
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    loader = AutoModelForMaskedLM if "MaskedLM" in arch else AutoModelForCausalLM if "CausalLM" in arch or "LMHead" in arch else AutoModel
    try:
        model = loader.from_pretrained(path, attn_implementation="sdpa", local_files_only=True, use_safetensors=None)
    except (ValueError, OSError) as exc:
        raise FaultlensError(f"Cannot load {path}: {str(exc).splitlines()[0]}; check the directory is a complete HF model.") from None
    return from_hf(model, name=str(Path(spec)))


def _from_factory(file: str, attr: str) -> Target:
    import importlib.util
    from pathlib import Path

    path = Path(file)
    if not path.is_file():
        raise FaultlensError(f"{file} does not exist; pass path/to/file.py:factory with an existing file.")
    spec = importlib.util.spec_from_file_location(f"faultlens_user_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # noqa: BLE001 - user code
        raise FaultlensError(f"importing {file} failed ({type(exc).__name__}: {exc}); fix the file so it imports.") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        names = [n for n in dir(mod) if callable(getattr(mod, n)) and not n.startswith("_")]
        raise FaultlensError(f"{file} has no callable {attr!r}; available: {', '.join(names[:8]) or 'none'}.")
    try:
        obj = fn()
    except Exception as exc:  # noqa: BLE001 - user code
        raise FaultlensError(f"factory {file}:{attr}() raised {type(exc).__name__}: {exc}; "
                             "make it a zero-argument callable that returns the module.") from None
    if not isinstance(obj, nn.Module):
        raise FaultlensError(f"factory {file}:{attr}() returned {type(obj).__name__}, not an nn.Module.")
    if hasattr(obj, "config") and hasattr(obj, "base_model_prefix"):
        return from_hf(obj, name=f"{file}:{attr}")
    return from_module(obj, name=f"{file}:{attr}", factory=fn)
