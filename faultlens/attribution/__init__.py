"""Contrastive LRP attribution: why the wrong answer beat the right one (see docs/attribution.md)."""

from faultlens.attribution.explain import (METHODS, Explanation, attribute_failures, explain,
                                           explanation_to_store)
from faultlens.attribution.graph import GraphConfig, attribution_graph, graph_to_store
from faultlens.attribution.patching import lrp_rules

__all__ = ["METHODS", "Explanation", "GraphConfig", "attribute_failures", "attribution_graph", "explain",
           "explanation_to_store", "graph_to_store", "lrp_rules"]
