"""The run store: where every capability meets (see DESIGN.md)."""

from faultlens.store.store import DEFAULT_STORE, Store, open_store

__all__ = ["DEFAULT_STORE", "Store", "open_store"]
