"""How much memory serving an archive takes: an upper bound on the peak RSS of the
serving process (`python -m serving.serve`, the serving image's only process) and the
smallest SageMaker Serverless memory size that holds it.

The estimate is computed from the ONNX model, not measured, so the same model always
gives the same `metadata.json` (and the same archive bytes and version). Its constants
were measured on ONNX Runtime 1.32 with one thread, for the six tested architectures in
fp32 and int8 (docs/model.md); the model tests check the bound against the real server's
peak RSS for every tested architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx
from onnx import helper, shape_inference

from shared.serverless import SERVERLESS_MEMORY_STEP_MB

MIB = 2**20
RUNTIME_MB = 96
"""Python, NumPy, Pillow, ONNX Runtime, Starlette and uvicorn before any model: 80 MiB
measured."""
LOAD_FACTOR = 4.0
"""Peak while creating the session, per byte of model.onnx: the file, its parsed protobuf
and the runtime's own tensors coexist for a moment. 3.6 measured at most (ResNet-18
fp32), 1.9 to 3.6 across the tested models."""
ACTIVATION_FACTOR = 8.0
"""Working memory of one inference, per byte of the largest intermediate tensor of a
one-image batch (ONNX Runtime reuses buffers along the graph): at most 4.1 measured."""
REQUEST_BYTES_PER_PIXEL = 18.0
"""The largest image the handler accepts is decoded in full before it is reduced: 17.1
bytes per declared pixel measured for the worst format (a lossless RGBA WebP: the
decoder's buffer, the image, the white background it is composited on, the alpha mask)."""
MAX_IMAGE_PIXELS = 50_000_000
"""The handler's default `MODEL_MAX_IMAGE_PIXELS`: larger images are refused before
decoding. A deployment that lowers it needs less memory than recorded."""


@dataclass(frozen=True)
class MemoryEstimate:
    model_mb: int
    """Upper bound on the serving process's peak RSS (MiB) with this model loaded and
    serving ordinary photos."""
    peak_rss_mb: int
    """The same while decoding the largest image the handler accepts."""
    memory_mb_min: int
    """The smallest SageMaker Serverless memory size (MB, a multiple of 1024) that holds
    `peak_rss_mb`; above 6144 the model cannot be served serverless."""


def estimate(model: bytes, crop_size: int) -> MemoryEstimate:
    activation = largest_activation_bytes(model, crop_size)
    model_mb = math.ceil(
        RUNTIME_MB + (LOAD_FACTOR * len(model) + ACTIVATION_FACTOR * activation) / MIB
    )
    peak_rss_mb = model_mb + math.ceil(REQUEST_BYTES_PER_PIXEL * MAX_IMAGE_PIXELS / MIB)
    steps = math.ceil(peak_rss_mb / SERVERLESS_MEMORY_STEP_MB)
    return MemoryEstimate(model_mb, peak_rss_mb, steps * SERVERLESS_MEMORY_STEP_MB)


def largest_activation_bytes(model: bytes, crop_size: int) -> int:
    """The largest tensor a one-image batch of ``crop_size`` squares flows through, by
    ONNX shape inference with the input's free dimensions fixed (batch 1, the crop)."""
    proto = onnx.load_from_string(model)
    graph = proto.graph
    weights = {tensor.name for tensor in graph.initializer}
    network_input = next(value for value in graph.input if value.name not in weights)
    # Rank 4: torchvision exports are, and model.onnx_import refuses any other input.
    dims = network_input.type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, 3, crop_size, crop_size), strict=True):
        if not dim.HasField("dim_value"):
            dim.Clear()
            dim.dim_value = size
    del graph.value_info[:]  # recomputed for the fixed input
    inferred = shape_inference.infer_shapes(proto).graph
    largest = 0
    for value in (network_input, *inferred.value_info, *inferred.output):
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        elements = 1
        for dim in tensor_type.shape.dim:
            # A dimension inference cannot size depends on the data: count it as 1.
            elements *= dim.dim_value if dim.HasField("dim_value") else 1
        itemsize = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).itemsize
        largest = max(largest, elements * itemsize)
    return largest
