"""A tiny stand-in model so handler and server tests run in milliseconds, without torch.

The graph keeps the real contract (input ``input`` [N,3,224,224], output ``logits``
[N,classes], 1000 unless a test asks for fewer) and maps each image's mean colour to
logits, so different pixels give different, checkable answers. Tests of the real exported
networks use ``model_artifact`` and the per-architecture archives (tests/model/archives.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from serving.serve import LoadedHandler

CODE = Path(__file__).resolve().parents[2] / "serving" / "code"
# IMAGENET1K_V2's reference transforms; test_package checks the real archive carries them.
PREPROCESSING = {
    "resize_size": 232,
    "crop_size": 224,
    "interpolation": "bilinear",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}
CLASSES = 1000


def tiny_onnx_model(classes: int = CLASSES) -> onnx.ModelProto:
    weights = np.linspace(-1.0, 1.0, 3 * classes, dtype=np.float32).reshape(3, classes)
    weights = np.random.default_rng(0).permuted(weights, axis=1)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"]),
            helper.make_node("MatMul", ["features", "weights"], ["scaled"]),
            helper.make_node("Mul", ["scaled", "gain"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array(4.0, dtype=np.float32), "gain"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def write_tiny_model_dir(directory: Path, classes: int = CLASSES) -> Path:
    onnx.save(tiny_onnx_model(classes), directory / "model.onnx")
    metadata = {
        "name": "mobilenet_v2",
        "version": "tiny0000test",
        "weights": "random",
        "precision": "fp32",
        "labels": [f"class {index}" for index in range(classes)],
        "num_classes": classes,
        "label_set": "imagenet" if classes == CLASSES else "custom",
        "preprocessing": PREPROCESSING,
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    shutil.copytree(CODE, directory / "code", ignore=shutil.ignore_patterns("__pycache__"))
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extracted model directory (as SageMaker's /opt/ml/model) with the tiny model."""
    return write_tiny_model_dir(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def handler(tiny_model_dir: Path) -> LoadedHandler:
    """``code/inference.py`` imported and ``model_fn`` called, exactly as serving.serve does."""
    return LoadedHandler(tiny_model_dir)
