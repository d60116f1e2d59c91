"""Checks that an existing ONNX file is an image classifier the handler can serve: one
float32 NCHW input of 3 channels at the crop size (batch dynamic or 1), logits with one
column per label. Every refusal says what is wrong and what to change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from model.preprocessing import Preprocessing

# Operators only a quantized graph has: such a model is recorded as int8 as it is.
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
    }
)
# A few photos through the model tell logits from probabilities (see _check_logits).
PROBE_PHOTOS = ("chelsea", "coffee", "astronaut")


class OnnxImportError(ValueError):
    """The ONNX file cannot be packaged; the message says why and what to do."""


@dataclass(frozen=True)
class ImportedModel:
    model: bytes
    """The model as one file: the file's bytes unchanged, or for a model whose weights are
    in external data files (torch's default exporter writes `model.onnx.data`), the model
    with those weights inlined, serialized deterministically."""
    input_name: str
    output_name: str
    opset: int
    quantized: bool


def check_classifier(path: Path, preprocessing: Preprocessing, num_labels: int) -> ImportedModel:
    """Read and check ``path`` against the preprocessing and the number of labels."""
    where = f"--onnx {path}"
    try:
        model = path.read_bytes()
    except OSError as error:
        raise OnnxImportError(f"{where}: cannot read it ({error})") from error
    try:
        proto = onnx.load_from_string(model)
    except Exception as error:  # the parser raises many types
        raise OnnxImportError(f"{where}: not a valid ONNX model ({error})") from error
    if any(onnx.external_data_helper.uses_external_data(t) for t in _tensors(proto.graph)):
        model = _inline_external_data(where, path, proto)
    try:
        onnx.checker.check_model(proto)
    except Exception as error:  # the checker raises many types
        raise OnnxImportError(f"{where}: not a valid ONNX model ({error})") from error
    graph = proto.graph
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    if len(inputs) != 1:
        names = ", ".join(value.name for value in inputs) or "none"
        raise OnnxImportError(
            f"{where}: it has {len(inputs)} inputs ({names}); an image classifier takes one, "
            "the image batch"
        )
    (network_input,) = inputs
    _check_input(where, network_input, preprocessing.crop_size)
    try:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own types for unsupported graphs
        raise OnnxImportError(f"{where}: ONNX Runtime cannot load it ({error})") from error
    output_name = session.get_outputs()[0].name
    _check_outputs(where, session, network_input.name, output_name, preprocessing, num_labels)
    opset = next(
        (entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), 0
    )
    quantized = any(node.op_type in QUANTIZED_OPS for node in graph.node)
    return ImportedModel(model, network_input.name, output_name, opset, quantized)


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers and node attributes, subgraphs' included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            for subgraph in (
                *([attribute.g] if attribute.HasField("g") else []),
                *attribute.graphs,
            ):
                yield from _tensors(subgraph)


def _inline_external_data(where: str, path: Path, proto: onnx.ModelProto) -> bytes:
    """The model with the weights of its external data files (named relative to its own
    folder, as ONNX defines them) inlined: the archive holds one `model.onnx`."""
    try:
        onnx.load_external_data_for_model(proto, str(path.parent))
    except Exception as error:  # onnx raises many types for missing or bad data files
        detail = " ".join(str(error).split())
        raise OnnxImportError(
            f"{where}: its weights are in separate files, which cannot be read from "
            f"{path.parent} ({detail}); keep them beside it as exported, or save the model "
            "as one file (onnx.save_model(model, path, save_as_external_data=False))"
        ) from None
    try:
        return proto.SerializeToString(deterministic=True)
    except ValueError as error:  # protobuf's limit for one message is 2 GiB
        raise OnnxImportError(
            f"{where}: with its external weights it is too large for one file ({error})"
        ) from None


def _check_input(where: str, value: onnx.ValueInfoProto, crop_size: int) -> None:
    tensor_type = value.type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        kind = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()
        raise OnnxImportError(
            f"{where}: its input {value.name!r} is {kind}; the handler feeds float32 "
            "[batch, 3, height, width]"
        )
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    shown = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
    expected = f"[batch, 3, {crop_size}, {crop_size}] (NCHW)"
    if len(dims) != 4:
        raise OnnxImportError(
            f"{where}: its input {value.name!r} is {shown}; the handler feeds {expected}"
        )
    batch, channels, height, width = dims
    if channels != 3 and width == 3:
        raise OnnxImportError(
            f"{where}: its input {value.name!r} is {shown}, channels last (NHWC); the handler "
            f"feeds {expected}: export the model with channels first"
        )
    if channels not in (None, 3):
        raise OnnxImportError(
            f"{where}: its input {value.name!r} has {channels} channels ({shown}); the "
            f"handler feeds RGB images, {expected}"
        )
    if batch not in (None, 1):
        raise OnnxImportError(
            f"{where}: its input {value.name!r} has a fixed batch of {batch} ({shown}); the "
            "handler sends one image at a time: export with a dynamic batch axis or a batch of 1"
        )
    if any(side not in (None, crop_size) for side in (height, width)):
        raise OnnxImportError(
            f"{where}: its input {value.name!r} takes {height}x{width} images ({shown}) but "
            f"the crop size is {crop_size}: pass --crop-size (and --resize-size) to match"
        )


def _check_outputs(
    where: str,
    session: ort.InferenceSession,
    input_name: str,
    output_name: str,
    preprocessing: Preprocessing,
    num_labels: int,
) -> None:
    from model.quantize import load_photo

    preprocess = preprocessing.reference()
    batch = np.concatenate([preprocess(load_photo(name)) for name in PROBE_PHOTOS])
    rows = []
    for image in batch:  # one at a time: a model with a fixed batch of 1 must work
        try:
            (scores,) = session.run([output_name], {input_name: image[np.newaxis]})
        except Exception as error:  # ONNX Runtime raises its own types
            raise OnnxImportError(
                f"{where}: it fails on a {preprocessing.crop_size}x{preprocessing.crop_size} "
                f"image ({error})"
            ) from error
        if scores.ndim != 2 or scores.shape[0] != 1:
            raise OnnxImportError(
                f"{where}: its output {output_name!r} is {list(scores.shape)} for one image; "
                "the handler reads [batch, classes] logits from the first output"
            )
        rows.append(scores[0])
    classes = rows[0].shape[0]
    if classes != num_labels:
        raise OnnxImportError(
            f"{where}: the model has {classes} outputs but --labels has {num_labels} labels; "
            "they must be the same (one label per output, in order)"
        )
    _check_logits(where, np.stack(rows).astype(np.float64))


def _check_logits(where: str, scores: np.ndarray) -> None:
    """The handler applies softmax itself: a softmax already in the graph would flatten
    every probability towards 1/N, and every answer would need review."""
    in_unit_range = bool(((scores >= 0) & (scores <= 1)).all())
    if in_unit_range and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        raise OnnxImportError(
            f"{where}: its output already sums to 1 (a softmax); the handler applies softmax "
            "itself, so export the logits, the scores before the softmax"
        )
