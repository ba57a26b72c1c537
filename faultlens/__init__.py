"""faultlens: find, explain and predict how transformer language models fail."""

from faultlens.types import Case, Feature, Finding, Result

__all__ = ["Case", "Feature", "Finding", "Result"]
__version__ = "0.1.0"
