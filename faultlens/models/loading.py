"""Load a local Hugging Face causal LM safely, with one clear error per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from faultlens.errors import FaultlensError
from faultlens.models.zoo import SHIPPED, resolve_model_path

_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def check_model_dir(name_or_path: str) -> Path:
    """Resolve and validate a model directory; raise a FaultlensError saying what to do."""
    path = resolve_model_path(name_or_path)
    if not path.exists():
        raise FaultlensError(
            f"Model path {str(path)!r} does not exist; pass a local Hugging Face model directory "
            f"or a shipped model name ({', '.join(SHIPPED)})."
        )
    if not path.is_dir() or not (path / "config.json").is_file():
        raise FaultlensError(f"{str(path)!r} is not a Hugging Face model directory (no config.json); point --model at one.")
    if not any((path / w).exists() for w in _WEIGHTS):
        raise FaultlensError(f"{str(path)!r} has a config.json but no weights (model.safetensors); is the download complete?")
    try:
        json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise FaultlensError(f"{path / 'config.json'} is not valid JSON (line {exc.lineno}); fix or replace it.") from None
    return path


def load_model_and_tokenizer(
    name_or_path: str,
    attn_implementation: str = "sdpa",
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
):
    """Load (model, tokenizer, resolved path) from a local directory, offline.

    Weights load through safetensors where present (`use_safetensors` preferred; a `.bin` file
    is read with `weights_only` by transformers). Remote code only when the user asks for it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = check_model_dir(name_or_path)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    has_st = any((path / w).exists() for w in _WEIGHTS[:2])
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, attn_implementation=attn_implementation, dtype=dtype, local_files_only=True,
            trust_remote_code=trust_remote_code, use_safetensors=has_st,
        )
    except ValueError as exc:
        raise FaultlensError(f"Cannot load {path} as a causal LM: {str(exc).splitlines()[0]}") from None
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FaultlensError(f"{path} has no usable tokenizer ({str(exc).splitlines()[0]}); add tokenizer files to it.") from None
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise FaultlensError(f"Model weights contain NaN/Inf in {len(bad)} tensors (first: {bad[0]}); the checkpoint is corrupt.")
    return model.eval(), tok, path
