"""Save and load a fitted `FailurePredictor` with skops (never pickle).

`skops.io.load` refuses any type it does not trust. We trust exactly the types our predictor is
made of (our class, the sklearn pipeline pieces, numpy scalars/dtypes) and refuse a file that
contains anything else, so loading a predictor file cannot run foreign code.
"""

from __future__ import annotations

from pathlib import Path

import skops.io as sio

from faultlens.errors import FaultlensError
from faultlens.predict.predictor import FailurePredictor

# Exactly the types a FailurePredictor file contains beyond what skops trusts by default
# (the Pipeline, imputer, scaler and models are trusted by skops itself).
TRUSTED = frozenset({
    "faultlens.predict.predictor.FailurePredictor",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
})


def save(predictor: FailurePredictor, path: str | Path) -> Path:
    """Write `predictor` (fitted, with its `info_` dict) to a ``.skops`` file."""
    if not hasattr(predictor, "pipeline_"):
        raise FaultlensError("The predictor is not fitted; fit it before saving.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(predictor, path)
    return path


def load(path: str | Path) -> FailurePredictor:
    """Load a predictor file written by `save`, refusing files with unexpected types."""
    path = Path(path)
    if not path.is_file():
        raise FaultlensError(f"Predictor file {str(path)!r} not found; write one with `faultlens predict fit RUN_ID --out FILE`.")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip / not a skops file
        raise FaultlensError(f"{path} is not a skops predictor file ({exc}); write one with `faultlens predict fit`.") from None
    foreign = [t for t in untrusted if t not in TRUSTED]
    if foreign:
        raise FaultlensError(f"{path} contains types faultlens does not trust ({', '.join(foreign[:5])}); refusing to load it.")
    obj = sio.load(path, trusted=untrusted)
    if not isinstance(obj, FailurePredictor) or not hasattr(obj, "pipeline_"):
        raise FaultlensError(f"{path} does not hold a fitted FailurePredictor; write one with `faultlens predict fit`.")
    return obj
