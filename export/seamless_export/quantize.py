"""fp16 and int8 variants of exported fp32 graphs, made with ONNX Runtime's own tools, as the precision recipes
(:mod:`seamless_export.precision`) say: per graph role, what is converted and which nodes stay float32."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from seamless_export.graphs import PROTOBUF_LIMIT_BYTES, save_onnx
from seamless_export.precision import FP16, FP32, INT8, GraphRecipe, fp32_node_names, get_recipe

logger = logging.getLogger(__name__)

QUANTIZED_PRECISIONS = (FP16, INT8)
# Only matrix products are quantised. ONNX Runtime's integer convolutions (ConvInteger) are slower than float ones
# on CPU: with Conv included, the small preset's vocoder took 1252 ms instead of 251 ms and the t2u 57 ms
# instead of 30 ms (bench/bench_pipeline.py, 2 cores), while MatMul-only int8 cut a decoder step from 4.6 to 2.2 ms.
INT8_OP_TYPES = ["MatMul", "Gemm"]
HALF = 2  # an fp16 graph's weights take half the bytes of the fp32 ones
DISABLE_PREPACKING = "session.disable_prepacking"
EXTERNAL_DATA_BYTES = 512 * 1024**2  # int8 graphs this large keep their weights in a memory-mapped .data file


def _data_files(graph: Path) -> list[Path]:
    return [graph, graph.with_name(graph.name + ".data")]


def _size(paths: list[Path]) -> int:
    return sum(path.stat().st_size for path in paths if path.exists())


def keep_fp32(source: Path, target: Path) -> tuple[Path, ...]:
    """Write ``source`` unchanged at ``target`` (a graph the recipe leaves in float32)."""
    return save_onnx(onnx.load(str(source)), target, _size(_data_files(source)))


def _cast_target(node: onnx.NodeProto) -> int | None:
    return next((attr.i for attr in node.attribute if attr.name == "to"), None) if node.op_type == "Cast" else None


def _drop_unread_casts(graph: onnx.GraphProto) -> None:
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        unread = [node for node in graph.node if node.op_type == "Cast" and not read.intersection(node.output)]
        if not unread:
            return
        for node in unread:
            graph.node.remove(node)


def drop_fp16_round_trips(graph: onnx.GraphProto, fp32_nodes: set[str]) -> int:
    """Let float32 nodes read each other's outputs directly.

    The converter casts every float output of a blocked node to float16 and back to float32 before the next
    blocked node reads it, so a float32 island would still round each intermediate value to float16. Each such
    ``Cast(fp16) -> Cast(fp32)`` pair behind a node of ``fp32_nodes`` is bypassed, and casts left without
    readers are removed. Returns the number of bypassed pairs.
    """
    producer = {name: node for node in graph.node for name in node.output}
    graph_outputs = {value.name for value in graph.output}
    bypass: dict[str, str] = {}
    for node in graph.node:
        before = producer.get(node.input[0]) if _cast_target(node) == onnx.TensorProto.FLOAT else None
        if before is None or _cast_target(before) != onnx.TensorProto.FLOAT16:
            continue
        source = producer.get(before.input[0])
        if source is not None and source.name in fp32_nodes and node.output[0] not in graph_outputs:
            bypass[node.output[0]] = before.input[0]
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in bypass:
                node.input[index] = bypass[name]
    _drop_unread_casts(graph)
    return len(bypass)


def to_fp16(source: Path, target: Path, recipe: GraphRecipe, role: str) -> tuple[Path, ...]:
    """Convert weights and compute to float16, keeping float32 graph inputs and outputs and the nodes the recipe
    keeps in float32."""
    model = onnx.load(str(source))
    fp32_nodes = fp32_node_names(model.graph, recipe, role)
    fp32_nodes += [node.name for node in model.graph.node if node.op_type in recipe.fp32_ops]
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=[*DEFAULT_OP_BLOCK_LIST, *recipe.fp32_ops],
        node_block_list=fp32_nodes,
    )
    bypassed = drop_fp16_round_trips(converted.graph, set(fp32_nodes))
    logger.debug("%s: %d float16 round trips between float32 nodes bypassed", role, bypassed)
    return save_onnx(converted, target, _size(_data_files(source)) // HALF)


def to_int8(source: Path, target: Path, recipe: GraphRecipe, role: str) -> tuple[Path, ...]:
    """Dynamic QInt8 quantisation of the matrix-product weights (activations quantised at run time), leaving the
    nodes the recipe keeps in float32 unquantised."""
    if any(node.op_type == "FusedMatMul" for node in onnx.load(str(source), load_external_data=False).graph.node):
        graph = onnx.load(str(source))  # weights only now: a graph without a tied projection is read once
        untie_projection(graph)
        source = source.with_name(f"{source.stem}.untied.onnx")
        save_onnx(graph, source, PROTOBUF_LIMIT_BYTES)
        del graph
    # External data is memory-mapped by ONNX Runtime: weights a graph barely reads (the float lookup table)
    # then cost no memory.
    large = _size(_data_files(source)) >= EXTERNAL_DATA_BYTES
    excluded = fp32_node_names(onnx.load(str(source), load_external_data=False).graph, recipe, role)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OP_TYPES,
                     nodes_to_exclude=excluded, use_external_data_format=large)
    for scratch in (path for path in _data_files(source) if ".untied." in path.name):
        scratch.unlink()
    if not large:
        return ()
    return tuple(path for path in target.parent.iterdir() if path.name.startswith(target.name + "."))


def untie_projection(model: onnx.ModelProto) -> int:
    """Give every ``FusedMatMul(x, W, transB=1)`` on an initializer its own transposed copy ``W.T`` as a plain
    ``MatMul``, which the int8 quantiser quantises (it leaves FusedMatMul in float32). The fp32 decoder shares its
    embedding table with the vocabulary projection this way; in int8 the projection gets its own int8 table (a
    quarter of the float one) and the lookup keeps the float table, of which only the looked-up rows are read.
    Returns the number of projections untied."""
    initializers = {init.name: init for init in model.graph.initializer}
    untied = 0
    for node in model.graph.node:
        transposed = any(attr.name == "transB" and attr.i == 1 for attr in node.attribute)
        table = initializers.get(node.input[1]) if node.op_type == "FusedMatMul" and transposed else None
        if table is None:
            continue
        name = f"{table.name}.transposed"
        model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(table).T.copy(), name))
        node.op_type, node.domain = "MatMul", ""
        node.input[1] = name
        del node.attribute[:]
        untied += 1
    return untied


def converted_session_config(precision: str, session_config: Mapping[str, str]) -> dict[str, str]:
    """The session config entries a graph keeps after conversion: int8 unties the only shared weight (the
    vocabulary projection), so its graphs may pre-pack weights again."""
    if precision == INT8:
        return {key: value for key, value in session_config.items() if key != DISABLE_PREPACKING}
    return dict(session_config)


def convert(precision: str, source: Path, target: Path, role: str | None = None) -> tuple[Path, ...]:
    """Write the ``precision`` variant of the graph ``source`` (of ``role``, by default the file's stem) at
    ``target`` as the precision's recipe says; returns its external-data files."""
    if precision not in QUANTIZED_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(QUANTIZED_PRECISIONS)})")
    role = role if role is not None else source.stem
    recipe = get_recipe(precision).for_role(role)
    logger.info("%s: %s recipe: %s%s", role, precision, recipe.precision,
                f", float32 kept for {', '.join((*recipe.fp32_ops, *recipe.fp32_scopes))}"
                if recipe.fp32_ops or recipe.fp32_scopes else "")
    if recipe.precision == FP16:
        return to_fp16(source, target, recipe, role)
    if recipe.precision == INT8:
        return to_int8(source, target, recipe, role)
    if recipe.precision == FP32:
        return keep_fp32(source, target)
    raise ValueError(f"{role}: unknown graph precision {recipe.precision!r} in the {precision} recipe")
