"""Precision recipes: which graph of a bundle runs in which precision, and which of its nodes stay float32.

A recipe is a table, one :class:`GraphRecipe` per graph role. Nodes are picked by the module path the exporter
writes into their names (``/t2u_model/model/decoder/duration_predictor/conv1/Conv``), so a recipe names the
module, not a node. A predicted duration is rounded to a whole number of frames (``round(expm1(x))``): a small
error there adds or drops frames, so the predictors and their rounding stay float32 wherever a graph is
converted. Figures behind each choice: docs/export.md, "Precision recipes".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import onnx
from seamless_daemon.bundle import REQUIRED_ROLES, ROLE_SPEECH_ENCODER, ROLE_T2U, ROLE_VAD, ROLE_VOCODER

FP32 = "fp32"
FP16 = "fp16"
INT8 = "int8"

# Module paths of the two duration predictors: the t2u's character duration predictor and the vocoder's.
T2U_DURATION_SCOPE = "/duration_predictor/"
VOCODER_DURATION_SCOPE = "/dur_predictor/"
# Kept float32 in fp16 graphs: a LayerNorm's variance and a Softmax's exponentials are where float16 overflows
# or loses precision on GPUs (TensorRT warns about fp16 LayerNorm). On CPU, where ONNX Runtime computes most
# float16 nodes in float32, keeping them made no difference beyond one or two of 120 toy-model translations.
FP16_SENSITIVE_OPS = ("LayerNormalization", "Softmax")
# The float arithmetic that turns a predicted log-duration into a frame count (expm1 = Exp - 1, then Round);
# followed downstream from a kept scope, so the rounding sees float32 values too.
DURATION_ROUNDING_OPS = ("Exp", "Sub", "Round")


class RecipeError(ValueError):
    """A recipe that does not fit the graph it is applied to (one-line message)."""


@dataclass(frozen=True)
class GraphRecipe:
    """How one graph is converted.

    ``precision``: what the graph's weights and compute become (``fp32`` leaves the graph as exported).
    ``fp32_ops``: op types kept in float32 (fp16 only). ``fp32_scopes``: module-path fragments whose nodes, and
    the duration rounding downstream of them, are kept in float32 (fp16) or left unquantised (int8).
    """

    precision: str
    fp32_ops: tuple[str, ...] = ()
    fp32_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrecisionRecipe:
    """A recipe: the graphs it names, and ``text_decoder`` for every other graph (the text decoder's graphs,
    however the export splits them)."""

    name: str
    graphs: Mapping[str, GraphRecipe]
    text_decoder: GraphRecipe

    def for_role(self, role: str) -> GraphRecipe:
        return self.graphs.get(role, self.text_decoder)


_FP32_GRAPH = GraphRecipe(FP32)
_FP16_GRAPH = GraphRecipe(FP16, fp32_ops=FP16_SENSITIVE_OPS)
_INT8_GRAPH = GraphRecipe(INT8)

FP16_RECIPE = PrecisionRecipe(
    name=FP16,
    graphs=MappingProxyType({
        ROLE_SPEECH_ENCODER: _FP16_GRAPH,
        ROLE_T2U: GraphRecipe(FP16, fp32_ops=FP16_SENSITIVE_OPS, fp32_scopes=(T2U_DURATION_SCOPE,)),
        ROLE_VOCODER: GraphRecipe(FP16, fp32_ops=FP16_SENSITIVE_OPS, fp32_scopes=(VOCODER_DURATION_SCOPE,)),
        ROLE_VAD: _FP32_GRAPH,
    }),
    text_decoder=_FP16_GRAPH,
)

INT8_RECIPE = PrecisionRecipe(
    name=INT8,
    graphs=MappingProxyType({
        ROLE_SPEECH_ENCODER: _INT8_GRAPH,
        # Matrix products int8, the duration predictor float32. On the toy model int8 alone changed 2.3 % of the
        # t2u's units and 2.5 % of the speech lengths, never the text; at the released size it makes the t2u
        # 2.4x faster (351 -> 146 ms) and 0.49 GB smaller, which an 8 GB box needs (docs/performance.md).
        ROLE_T2U: GraphRecipe(INT8, fp32_scopes=(T2U_DURATION_SCOPE,)),
        # Convolutions stay float in int8 (ConvInteger is slower on CPU): only the duration predictor's
        # projection would be quantised, and a rounded duration is a cliff.
        ROLE_VOCODER: _FP32_GRAPH,
        ROLE_VAD: _FP32_GRAPH,
    }),
    text_decoder=_INT8_GRAPH,
)

FP32_RECIPE = PrecisionRecipe(name=FP32, graphs=MappingProxyType({}), text_decoder=_FP32_GRAPH)

RECIPES: Mapping[str, PrecisionRecipe] = MappingProxyType(
    {recipe.name: recipe for recipe in (FP32_RECIPE, FP16_RECIPE, INT8_RECIPE)}
)


def get_recipe(name: str) -> PrecisionRecipe:
    if name not in RECIPES:
        raise ValueError(f"unknown precision {name!r} (known: {', '.join(RECIPES)})")
    return RECIPES[name]


def graph_precision(recipe: str, role: str) -> str:
    """Precision of the weights of graph ``role`` in ``recipe``: ``fp32``, ``fp16`` or ``int8``."""
    return get_recipe(recipe).for_role(role).precision


def graph_precisions(recipe: str, roles: tuple[str, ...] | None = None) -> dict[str, str]:
    """Role -> precision of that graph's weights (``fp32``, ``fp16`` or ``int8``) in ``recipe``, for the manifest.

    ``roles`` defaults to the bundle's required roles. A graph with float32 islands (the duration predictors) is
    reported by its main precision; :func:`fp32_islands` names the islands.
    """
    return {role: graph_precision(recipe, role) for role in (roles if roles is not None else REQUIRED_ROLES)}


def fp32_islands(recipe: str) -> dict[str, list[str]]:
    """Role -> what stays float32 inside a converted graph (op types and module paths), for the manifest."""
    chosen = get_recipe(recipe)
    graphs = {role: chosen.for_role(role) for role in REQUIRED_ROLES}
    return {
        role: [*graph.fp32_ops, *graph.fp32_scopes]
        for role, graph in graphs.items()
        if graph.precision != FP32 and (graph.fp32_ops or graph.fp32_scopes)
    }


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def fp32_node_names(graph: onnx.GraphProto, recipe: GraphRecipe, role: str) -> list[str]:
    """Names of the nodes ``recipe`` keeps in float32: every node inside a scope, then the duration rounding
    (:data:`DURATION_ROUNDING_OPS`) their outputs flow into."""
    kept: list[str] = []
    for scope in recipe.fp32_scopes:
        inside = [node for node in graph.node if scope in node.name]
        if not inside:
            raise RecipeError(f"{role}: no node of the graph lies in the float32 scope {scope!r}")
        kept.extend(node.name for node in inside)
        kept.extend(_rounding_after(graph, inside))
    return list(dict.fromkeys(kept))


def _rounding_after(graph: onnx.GraphProto, inside: list[onnx.NodeProto]) -> list[str]:
    consumers = _consumers(graph)
    seen = {node.name for node in inside}
    frontier = [name for node in inside for name in node.output]
    found: list[str] = []
    while frontier:
        tensor = frontier.pop()
        for node in consumers.get(tensor, []):
            if node.name in seen or node.op_type not in DURATION_ROUNDING_OPS:
                continue
            seen.add(node.name)
            found.append(node.name)
            frontier.extend(node.output)
    return found
