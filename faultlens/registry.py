"""One generic name → object registry with "did you mean" errors.

Every pluggable family (probes, diagnostics, checks, organisms, ...) is a `Registry`, so
`faultlens list KIND` can print any of them and unknown names fail the same helpful way.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from faultlens.errors import FaultlensError

T = TypeVar("T")

REGISTRIES: dict[str, "Registry"] = {}


class Registry(Generic[T]):
    """A named collection of objects registered with a decorator.

    Args:
        kind: singular noun used in messages ("probe").
        plural: name under which `faultlens list` shows it ("probes").
    """

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or kind.replace(" ", "-") + "s"
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}
        REGISTRIES[self.plural] = self

    def register(self, name: str, doc: str | None = None) -> Callable[[T], T]:
        """Decorator: `@probes.register("position")`. Names are unique."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            text = doc or (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._docs[name] = text if isinstance(text, str) else (text[0] if text else "")
            return obj

        return deco

    def add(self, name: str, obj: T, doc: str | None = None) -> T:
        """Register without a decorator."""
        return self.register(name, doc)(obj)

    def get(self, name: str) -> T:
        """Return the object registered as `name`, or fail with a suggestion."""
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(self._items)) or "(none registered)"
        raise FaultlensError(f"Unknown {self.kind} {name!r}.{hint} Known: {known}.")

    def resolve(self, spec: str | list[str]) -> list[str]:
        """Turn "all" or "a,b" or a list into validated names (order kept)."""
        names = spec.split(",") if isinstance(spec, str) else list(spec)
        names = [n.strip() for n in names if n.strip()]
        if names == ["all"]:
            return list(self._items)
        for n in names:
            self.get(n)
        return names

    def doc(self, name: str) -> str:
        return self._docs.get(name, "")

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
