"""`python -m model.package --onnx`: an existing ONNX classifier is checked, packaged and
served; a model the handler cannot feed, or labels that do not match its outputs, are
refused with a message that says what to change."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from artifact.package_exit import EXIT_INT8_REFUSED, EXIT_UNUSABLE
from model.package import import_onnx, main
from model.preprocessing import IMAGENET_DEFAULTS, Preprocessing
from serving.serve import LoadedHandler
from tests.model.archives import served
from tests.serving import images


def classifier(
    shape: list[int | str],
    classes: int = 4,
    *,
    elem_type: int = TensorProto.FLOAT,
    softmax: bool = False,
    flatten: bool = True,
    extra_input: bool = False,
) -> onnx.ModelProto:
    """A small ONNX classifier of the given input shape: mean colour -> logits."""
    weights = np.linspace(-2.0, 2.0, 3 * classes, dtype=np.float32).reshape(3, classes)
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"])]
    if flatten:
        nodes += [
            helper.make_node("Flatten", ["pooled"], ["features"]),
            helper.make_node("MatMul", ["features", "weights"], ["scores"]),
        ]
    else:
        nodes += [helper.make_node("Identity", ["pooled"], ["scores"])]
    if softmax:
        nodes += [helper.make_node("Softmax", ["scores"], ["output"], axis=1)]
    else:
        nodes += [helper.make_node("Identity", ["scores"], ["output"])]
    inputs = [helper.make_tensor_value_info("image", elem_type, shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1]))
    graph = helper.make_graph(
        nodes,
        "classifier",
        inputs,
        [
            helper.make_tensor_value_info(
                "output", TensorProto.FLOAT, ["n", classes] if flatten else ["n", 3, 1, 1]
            )
        ],
        [numpy_helper.from_array(weights, "weights")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def write(tmp_path: Path, model: onnx.ModelProto, labels: int = 4) -> tuple[Path, Path]:
    model_path, labels_path = tmp_path / "classifier.onnx", tmp_path / "labels.txt"
    onnx.save(model, model_path)
    labels_path.write_text("".join(f"kind {index}\n" for index in range(labels)))
    return model_path, labels_path


def metadata_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.loads(tar.extractfile("metadata.json").read())


def test_a_small_classifier_is_imported_with_its_preprocessing(tmp_path, capsys):
    model_path, labels_path = write(tmp_path, classifier(["batch", 3, "height", "width"]))
    prep_file = tmp_path / "prep.json"
    prep_file.write_text(json.dumps({"resize_size": 200, "mean": [0.5, 0.5, 0.5]}))
    out = tmp_path / "model.tar.gz"
    status = main(
        ["--onnx", str(model_path), "--labels", str(labels_path), "--preprocessing",
         str(prep_file), "--crop-size", "160", "--interpolation", "bicubic", "--out", str(out)]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    metadata = metadata_of(out)
    assert metadata["preprocessing"] == {
        "resize_size": 200,
        "crop_size": 160,
        "interpolation": "bicubic",
        "mean": [0.5, 0.5, 0.5],
        "std": list(IMAGENET_DEFAULTS.std),
    }
    assert (metadata["name"], metadata["architecture"]) == ("classifier", None)
    digest = __import__("hashlib").sha256(model_path.read_bytes()).hexdigest()
    assert metadata["weights"] == f"onnx:{digest[:12]}"
    assert metadata["precision"] == "fp32"
    assert metadata["labels"] == ["kind 0", "kind 1", "kind 2", "kind 3"]
    assert (metadata["num_classes"], metadata["label_set"]) == (4, "custom")
    assert metadata["onnx"] == {"input": "image", "output": "output", "opset": 18}
    with tarfile.open(out) as tar:
        assert tar.extractfile("model.onnx").read() == model_path.read_bytes(), "kept as is"
    loaded = LoadedHandler(out)
    try:
        image = loaded.module.input_fn(images.good_cases()[0].body, "image/jpeg")
        result = loaded.module.predict_fn(image, loaded.model)
    finally:
        loaded.close()
    assert len(result["predictions"]) == 4
    assert {p["label"] for p in result["predictions"]} == set(metadata["labels"])
    assert result["model"]["num_classes"] == 4


def test_imagenet_defaults_apply_when_none_are_given(tmp_path):
    model_path, labels_path = write(tmp_path, classifier([1, 3, 224, 224]))
    info = import_onnx(model_path, labels_path, tmp_path / "m.tar.gz", name="defaults")
    metadata = metadata_of(info.path)
    assert metadata["preprocessing"] == IMAGENET_DEFAULTS.as_metadata()
    assert (info.name, metadata["name"]) == ("defaults", "defaults")


@pytest.mark.parametrize(
    ("model", "labels", "message"),
    [
        (classifier(["n", 3, 224, 224], classes=10), 4, "the model has 10 outputs but --labels "
         "has 4 labels"),
        (classifier(["n", 224, 224, 3]), 4, "channels last (NHWC)"),
        (classifier(["n", 1, 224, 224]), 4, "has 1 channels"),
        (classifier([8, 3, 224, 224]), 4, "a fixed batch of 8"),
        (classifier(["n", 3, 160, 160]), 4, "takes 160x160 images"),
        (classifier(["n", 3, 224]), 4, "the handler feeds [batch, 3, 224, 224] (NCHW)"),
        (classifier(["n", 3, 224, 224], elem_type=TensorProto.UINT8), 4, "is uint8"),
        (classifier(["n", 3, 224, 224], extra_input=True), 4, "it has 2 inputs (image, mask)"),
        (classifier(["n", 3, 224, 224], softmax=True), 4, "already sums to 1 (a softmax)"),
        (classifier(["n", 3, 224, 224], flatten=False), 4, "is [1, 3, 1, 1] for one image"),
    ],
)  # fmt: skip
def test_models_the_handler_cannot_serve_are_refused(tmp_path, capsys, model, labels, message):
    model_path, labels_path = write(tmp_path, model, labels)
    out = tmp_path / "m.tar.gz"
    argv = ["--onnx", str(model_path), "--labels", str(labels_path), "--out", str(out)]
    assert main(argv) == EXIT_UNUSABLE
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --onnx {model_path}: ")
    assert message in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_a_file_that_is_not_onnx(tmp_path, capsys):
    model_path, labels_path = write(tmp_path, classifier(["n", 3, 224, 224]))
    model_path.write_bytes(b"\x08\x07 not a model")
    argv = [
        "--onnx",
        str(model_path),
        "--labels",
        str(labels_path),
        "--out",
        str(tmp_path / "m.tar.gz"),
    ]
    assert main(argv) == EXIT_UNUSABLE
    assert "not a valid ONNX model" in capsys.readouterr().err


def test_an_already_quantized_model_is_recorded_as_int8(tmp_path):
    from model.package import PackageError
    from model.quantize import quantize_int8

    prep = Preprocessing.from_mapping({"crop_size": 64, "resize_size": 64}, IMAGENET_DEFAULTS)
    fp32 = classifier(["n", 3, 64, 64]).SerializeToString()
    quantized = onnx.load_from_string(quantize_int8(fp32, prep.reference()))
    model_path, labels_path = write(tmp_path, quantized)
    info = import_onnx(model_path, labels_path, tmp_path / "m.tar.gz", preprocessing=prep)
    assert info.precision == metadata_of(info.path)["precision"] == "int8"
    for precision in ("int8", "fp32"):
        with pytest.raises(PackageError, match="already quantized"):
            import_onnx(
                model_path, labels_path, tmp_path / "x", precision=precision, preprocessing=prep
            )


def test_int8_of_an_import_passes_the_same_check_or_is_refused(tmp_path, capsys):
    """This coarse classifier loses too much in int8: the build says so, exits 3 (the
    local runtime's cue to fall back) and names the way out, which then works."""
    model_path, labels_path = write(tmp_path, classifier(["n", 3, 64, 64]))
    out = tmp_path / "m.tar.gz"
    argv = ["--onnx", str(model_path), "--labels", str(labels_path), "--crop-size", "64",
            "--resize-size", "64", "--out", str(out)]  # fmt: skip
    assert main([*argv, "--precision", "int8"]) == EXIT_INT8_REFUSED
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the int8 classifier disagrees with its fp32 export")
    assert err.endswith("Build with --precision fp32 instead.")
    assert not out.exists()
    assert main([*argv, "--precision", "fp32"]) == 0
    assert metadata_of(out)["precision"] == "fp32"


@pytest.mark.slow
def test_a_torchvision_export_round_trip(tmp_path):
    """Export a small torchvision network (4 classes, other input and output names, a
    fixed batch of 1, bicubic 192 px crops) to ONNX here, import it, and serve it: the
    answers are torch's own on the same pixels. SqueezeNet: small, and its random logits
    differ by tenths, so the comparison has teeth."""
    import torch
    import torchvision

    torch.manual_seed(3)
    network = torchvision.models.get_model("squeezenet1_1", num_classes=4).eval()
    prep = Preprocessing.from_mapping(
        {"resize_size": 220, "crop_size": 192, "interpolation": "bicubic"}, IMAGENET_DEFAULTS
    )
    model_path = tmp_path / "exported.onnx"
    with torch.no_grad():
        program = torch.onnx.export(
            network,
            (torch.zeros(1, 3, 192, 192),),
            dynamo=True,
            input_names=["pixel_values"],
            output_names=["scores"],
        )
    program.save(str(model_path))
    labels_path = tmp_path / "labels.txt"
    labels_path.write_text("apple\nbanana\ncherry\ndate\n")
    archive = import_onnx(
        model_path, labels_path, tmp_path / "model.tar.gz", preprocessing=prep, name="fruit"
    ).path
    metadata = metadata_of(archive)
    assert metadata["onnx"]["input"] == "pixel_values"
    assert metadata["onnx"]["output"] == "scores"

    photo = Image.fromarray(np.asarray(images.photo()))
    with torch.no_grad():
        logits = network(torch.from_numpy(prep.reference()(photo)))[0].double()
    expected = torch.softmax(logits, 0).numpy()
    assert expected.max() - expected.min() > 0.01
    with served(archive) as server:
        response = httpx.post(
            f"{server.url}/invocations",
            content=images.encode(photo, "PNG"),
            headers={"content-type": "image/png"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "fruit"
    predictions = body["predictions"]
    assert len(predictions) == 4
    assert {p["label"] for p in predictions} == {"apple", "banana", "cherry", "date"}
    for prediction in predictions:
        assert prediction["label"] == ["apple", "banana", "cherry", "date"][prediction["index"]]
        assert prediction["probability"] == pytest.approx(expected[prediction["index"]], abs=1e-4)


def save_with_external_data(model: onnx.ModelProto, path: Path) -> None:
    """As torch's default exporter saves a model: its weights in `<name>.data` beside it."""
    onnx.save_model(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data",
        size_threshold=0,
    )


def test_weights_in_an_external_data_file_are_packaged_in_one_file(tmp_path):
    """The data file is read from the model's folder, wherever the build runs (the tests
    run in the repository), and the archive holds one model.onnx that answers as the
    single-file model does, byte-reproducibly."""
    one_file, labels_path = write(tmp_path, classifier(["n", 3, 224, 224]))
    exported = tmp_path / "export" / "model.onnx"
    exported.parent.mkdir()
    save_with_external_data(classifier(["n", 3, 224, 224]), exported)
    assert (tmp_path / "export" / "model.onnx.data").is_file()

    archives = [import_onnx(exported, labels_path, tmp_path / f"{n}.tar.gz") for n in (1, 2)]
    assert archives[0].path.read_bytes() == archives[1].path.read_bytes()
    with tarfile.open(archives[0].path) as tar:
        packaged = onnx.load_from_string(tar.extractfile("model.onnx").read())
        assert sorted(tar.getnames()) == ["code/inference.py", "metadata.json", "model.onnx"]
    assert not any(
        onnx.external_data_helper.uses_external_data(t) for t in packaged.graph.initializer
    )
    digest = __import__("hashlib").sha256(packaged.SerializeToString(deterministic=True))
    assert metadata_of(archives[0].path)["weights"] == f"onnx:{digest.hexdigest()[:12]}"

    single = import_onnx(one_file, labels_path, tmp_path / "single.tar.gz", name="model")
    answers = []
    for archive in (archives[0].path, single.path):
        loaded = LoadedHandler(archive)
        try:
            image = loaded.module.input_fn(images.good_cases()[0].body, "image/jpeg")
            answers.append(loaded.module.predict_fn(image, loaded.model)["predictions"])
        finally:
            loaded.close()
    assert answers[0] == answers[1]


def test_a_missing_external_data_file_is_one_line(tmp_path, capsys):
    exported = tmp_path / "model.onnx"
    save_with_external_data(classifier(["n", 3, 224, 224]), exported)
    (tmp_path / "model.onnx.data").unlink()
    labels_path = tmp_path / "labels.txt"
    labels_path.write_text("a\nb\nc\nd\n")
    out = tmp_path / "m.tar.gz"
    assert main(["--onnx", str(exported), "--labels", str(labels_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: --onnx {exported}: its weights are in separate files, which ")
    assert "model.onnx.data" in err
    assert "save_as_external_data=False" in err
    assert not out.exists()


def test_the_progress_lines_read_as_sentences(tmp_path, capsys):
    """The preprocessing in words, not a Python repr; the model's name quoted, not
    "model model"; and `memory_mb_min` by the name docs/model.md tells users to note."""
    model_path, labels_path = write(tmp_path, classifier([1, 3, 224, 224]))
    model_path = model_path.rename(tmp_path / "model.onnx")
    out = tmp_path / "m.tar.gz"
    assert main(["--onnx", str(model_path), "--labels", str(labels_path), "--out", str(out)]) == 0
    output = capsys.readouterr().out
    assert "Preprocessing(" not in output
    assert (
        "against 4 labels and resize 256, crop 224, bilinear, mean 0.485,0.456,0.406, "
        "std 0.229,0.224,0.225"
    ) in output
    assert "model model" not in output
    assert 'name "model"' in output
    memory = metadata_of(out)["memory_mb_min"]
    assert f"memory_mb_min {memory}" in output
