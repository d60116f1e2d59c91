"""Export a torchvision network to ONNX and prove the export computes what torch computes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 18
PARITY_TOLERANCE = 1e-4
# Logits against their own spread: the bound that still bites when an untrained network's
# logits are all near zero (about 1e-10 for random MobileNets and EfficientNets), where
# every absolute bound passes. Healthy exports sit near 1e-6; a wrong one near 1.
RELATIVE_PARITY_TOLERANCE = 1e-3


class ExportMismatchError(RuntimeError):
    """The network cannot be exported, or ONNX Runtime disagrees with torch on it."""


def export_onnx(network: torch.nn.Module, crop_size: int) -> bytes:
    """Serialized ONNX model with a dynamic batch axis, free of build-machine details.

    The dynamo exporter is torch's default and maintained path; it folds batch norm into
    the convolutions and optimizes the graph. It also records each node's Python stack
    trace (absolute paths of this virtualenv) in metadata, so we drop every metadata
    entry and doc string: the bytes then depend only on the weights and the versions.
    """
    example = torch.zeros(2, 3, crop_size, crop_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                network,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                opset_version=OPSET,
                optimize=True,
                verbose=False,
            )
    except Exception as error:  # the exporter raises many types; each means "cannot"
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ExportMismatchError(
            f"torch cannot export the network to ONNX ({first_line})"
        ) from error
    if program is None:
        raise ExportMismatchError("torch returned no ONNX program for the network")
    proto = program.model_proto
    strip_metadata(proto)
    onnx.checker.check_model(proto)
    return proto.SerializeToString(deterministic=True)


def io_names(model: bytes) -> tuple[str, str]:
    """The network input (the graph input that is not a weight) and its first output:
    what the handler feeds and reads."""
    graph = onnx.load_from_string(model).graph
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value.name for value in graph.input if value.name not in weights]
    return inputs[0], graph.output[0].name


def strip_metadata(proto: onnx.ModelProto) -> None:
    """Drop doc strings and metadata, which may name paths of the build machine."""
    del proto.metadata_props[:]
    proto.doc_string = ""
    graph = proto.graph
    graph.doc_string = ""
    del graph.metadata_props[:]
    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.doc_string = ""
        del value.metadata_props[:]
    for tensor in graph.initializer:
        tensor.doc_string = ""
        del tensor.metadata_props[:]


@dataclass(frozen=True)
class Parity:
    max_dp: float  # probabilities: the contract
    max_dlogit: float
    relative_dlogit: float  # max_dlogit over the logits' RMS spread: scale-free


def check_parity(network: torch.nn.Module, onnx_model: bytes, crop_size: int) -> Parity:
    """Compare torch and ONNX Runtime on a fixed batch; raise past the tolerance."""
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 3, crop_size, crop_size, generator=generator)
    with torch.no_grad():
        expected_logits = network(batch).numpy()
    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    max_dlogit = float(np.abs(logits - expected_logits).max())
    centered = expected_logits - expected_logits.mean(axis=1, keepdims=True)
    spread = float(np.sqrt(np.mean(centered.astype(np.float64) ** 2)))
    parity = Parity(
        max_dp=float(np.abs(softmax(logits) - softmax(expected_logits)).max()),
        max_dlogit=max_dlogit,
        relative_dlogit=max_dlogit / spread if spread > 0 else (np.inf if max_dlogit else 0.0),
    )
    if not parity.max_dp <= PARITY_TOLERANCE:
        raise ExportMismatchError(
            f"ONNX Runtime and torch disagree: max |dp| = {parity.max_dp:.2e} > "
            f"{PARITY_TOLERANCE:.0e}"
        )
    if not parity.relative_dlogit <= RELATIVE_PARITY_TOLERANCE:
        raise ExportMismatchError(
            f"ONNX Runtime and torch disagree: max |dlogit| is {parity.relative_dlogit:.2e} "
            f"of the logits' spread > {RELATIVE_PARITY_TOLERANCE:.0e}"
        )
    return parity


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
