"""Models shipped inside the package, loadable by name (no hub, no download)."""

from __future__ import annotations

from pathlib import Path

ZOO_DIR = Path(__file__).parent / "zoo"

SHIPPED = {
    "stories260k": "Karpathy's llama2.c TinyStories Llama (260K params, MIT); see zoo/stories260k/README.md",
}

DEFAULT_MODEL = "stories260k"


def resolve_model_path(name_or_path: str) -> Path:
    """A shipped model's directory for its name; otherwise the path itself (not checked here)."""
    if name_or_path in SHIPPED:
        return ZOO_DIR / name_or_path
    return Path(name_or_path).expanduser()
