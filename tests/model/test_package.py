"""``python -m model.package``: layout, metadata, reproducible bytes, ONNX/torch parity,
both precisions, and every way of choosing weights. Slow: these export the real network
with torch."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model.package import CODE_DIR, build_archive, content_version, main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fp32_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp32") / "model.tar.gz"
    info = build_archive("random", out, precision="fp32")
    assert info.precision == "fp32"
    return out


def op_types(archive: Path) -> set[str]:
    graph = onnx.load_from_string(read_archive(archive)["model.onnx"]).graph
    return {node.op_type for node in graph.node}


def read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


def network_and_session(spec: str, archive: Path):
    from model.weights import load_network

    network = load_network(spec, "mobilenet_v2").module
    session = ort.InferenceSession(read_archive(archive)["model.onnx"])
    return network, session


def assert_parity(network, session, batch: np.ndarray) -> None:
    import torch

    with torch.no_grad():
        expected = network(torch.from_numpy(batch)).numpy()
    (actual,) = session.run(["logits"], {"input": batch})
    assert actual.shape == (len(batch), 1000)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)
    probabilities = [np.exp(x - x.max(1, keepdims=True)) for x in (actual, expected)]
    p_actual, p_expected = (p / p.sum(1, keepdims=True) for p in probabilities)
    assert np.abs(p_actual - p_expected).max() <= 1e-4


def photo_batch() -> np.ndarray:
    """Real photos through the serving preprocessing (torch-free), as one batch."""
    import skimage.data

    from tests.serving.conftest import PREPROCESSING

    mean = np.asarray(PREPROCESSING["mean"], dtype=np.float32)
    std = np.asarray(PREPROCESSING["std"], dtype=np.float32)
    crops = []
    for array in (skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()):
        crop = array[:224, :224].astype(np.float32) / 255
        crops.append(((crop - mean) / std).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(crops))


def test_layout_and_metadata(model_artifact):
    from torchvision.models import MobileNet_V2_Weights

    files = read_archive(model_artifact)
    assert sorted(files) == [
        "code/inference.py",
        "metadata.json",
        "model.onnx",
    ]
    assert files["code/inference.py"] == (CODE_DIR / "inference.py").read_bytes()
    metadata = json.loads(files["metadata.json"])
    reference = MobileNet_V2_Weights.IMAGENET1K_V2
    transforms = reference.transforms()
    assert metadata["name"] == metadata["architecture"] == "mobilenet_v2"
    assert metadata["weights"] == "random"
    assert metadata["precision"] == "int8"
    assert metadata["labels"] == reference.meta["categories"]
    assert (metadata["num_classes"], metadata["label_set"]) == (1000, "imagenet")
    assert metadata["memory_mb_min"] == 1024, "the default archive fits the smallest size"
    assert metadata["onnx"] == {"input": "input", "output": "logits", "opset": 18}
    assert metadata["preprocessing"] == {
        "resize_size": transforms.resize_size[0],
        "crop_size": transforms.crop_size[0],
        "interpolation": "bilinear",
        "mean": transforms.mean,
        "std": transforms.std,
    }
    without_version = {k: v for k, v in metadata.items() if k != "version"}
    entries = {name: data for name, data in files.items() if name != "metadata.json"}
    assert metadata["version"] == content_version(entries, without_version)

    graph = onnx.load_from_string(files["model.onnx"]).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["logits"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param
    assert [d.dim_value for d in dims[1:]] == [3, 224, 224]
    assert b"site-packages" not in files["model.onnx"], "build paths leak into the model"


def test_tar_entries_are_normalised(model_artifact):
    raw = model_artifact.read_bytes()
    assert raw[4:8] == bytes(4), "gzip mtime must be 0"
    with tarfile.open(model_artifact) as tar:
        for member in tar.getmembers():
            assert (member.mtime, member.uid, member.gid, member.mode) == (0, 0, 0, 0o644)
            assert member.isfile()


def test_same_inputs_give_identical_bytes(model_artifact, tmp_path):
    out = tmp_path / "again.tar.gz"
    result = subprocess.run(
        [sys.executable, "-m", "model.package", "--weights", "random", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.read_bytes() == model_artifact.read_bytes()
    version = json.loads(read_archive(out)["metadata.json"])["version"]
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line == f"{out} {out.stat().st_size} bytes version {version}"
    assert "max |dp|" in result.stdout, "the fp32 parity check runs for int8 builds too"
    assert "int8 agrees with fp32 on held-out photos" in result.stdout


def test_int8_is_the_default_and_is_quantized(model_artifact):
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types(model_artifact)


def test_fp32_is_the_exact_export(fp32_artifact, model_artifact):
    metadata = json.loads(read_archive(fp32_artifact)["metadata.json"])
    assert metadata["precision"] == "fp32"
    assert not {"QuantizeLinear", "DequantizeLinear"} & op_types(fp32_artifact)
    int8_version = json.loads(read_archive(model_artifact)["metadata.json"])["version"]
    assert metadata["version"] != int8_version


def test_fp32_is_reproducible_too(fp32_artifact, tmp_path):
    again = build_archive("random", tmp_path / "again.tar.gz", precision="fp32")
    assert again.path.read_bytes() == fp32_artifact.read_bytes()


def test_onnx_matches_torch_on_real_photos(fp32_artifact):
    network, session = network_and_session("random", fp32_artifact)
    assert_parity(network, session, photo_batch())


def test_unknown_precision_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--weights", "random", "--precision", "int4", "--out", str(tmp_path / "m")])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="precision"):
        build_archive("random", tmp_path / "m", precision="int4")


def trained_like_network():
    """MobileNetV2 with random filters but a trained network's activation scale.

    torchvision's fresh initialisation gives logits of about 1e-9, against which any
    parity check passes; here batch-norm statistics come from real photos and the
    classifier is scaled to logits with a standard deviation of 3, so a difference in
    the export would show.
    """
    import torch
    import torchvision

    from model.quantize import CALIBRATION_PHOTOS, photo_views
    from model.weights import reference_preprocess

    torch.manual_seed(7)
    network = torchvision.models.mobilenet_v2(weights=None)
    preprocess = reference_preprocess("mobilenet_v2")
    views = [torch.from_numpy(preprocess(v)) for v in photo_views(CALIBRATION_PHOTOS)]
    batch = torch.cat(views)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # a plain average over the batch
        network.train()(batch)
        network.eval()
        network.classifier[1].weight.mul_(3 / network(batch).std())
    return network


def test_local_weights_file(tmp_path):
    import torch

    trained = trained_like_network()
    with torch.no_grad():
        assert trained(torch.from_numpy(photo_batch())).std() > 1, "a check with teeth"
    weights = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), weights)
    info = build_archive(str(weights), tmp_path / "model.tar.gz", precision="fp32")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert info.weights == f"file:{digest[:12]}"
    metadata = json.loads(read_archive(info.path)["metadata.json"])
    assert (metadata["weights"], metadata["version"]) == (info.weights, info.version)
    assert metadata["precision"] == info.precision == "fp32"
    session = ort.InferenceSession(read_archive(info.path)["model.onnx"])
    assert_parity(trained, session, photo_batch())


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a checkpoint", "not a PyTorch state_dict"), (None, "not a mobilenet_v2 state_dict")],
)
def test_unusable_weights_files(tmp_path, capsys, content, message):
    import torch

    path = tmp_path / "weights.pt"
    if content is None:
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    else:
        path.write_bytes(content)
    assert main(["--weights", str(path), "--out", str(tmp_path / "m.tar.gz")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "m.tar.gz").exists()


def test_missing_weights_file(tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.tar.gz")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_imagenet_offline_fails_fast_with_advice(tmp_path, monkeypatch, capsys):
    import torch

    from model import weights

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "reachable", lambda _host, _port: False)
    assert main(["--weights", "imagenet", "--out", str(tmp_path / "m.tar.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--weights PATH" in err
    assert "--weights random" in err


def test_network_probe_gives_up_quickly():
    import time

    from model import weights

    started = time.monotonic()
    weights.reachable("192.0.2.1", 443)  # TEST-NET-1: never routed
    assert time.monotonic() - started < weights.NETWORK_PROBE_SECONDS + 1


def test_archive_is_what_the_handler_loads(model_artifact):
    from serving.serve import LoadedHandler
    from tests.serving import images

    handler = LoadedHandler(model_artifact)
    try:
        image = handler.module.input_fn(images.good_cases()[0].body, "image/jpeg")
        result = handler.module.predict_fn(image, handler.model)
    finally:
        handler.close()
    assert result["model"]["weights"] == "random"
    assert result["model"]["precision"] == "int8"
    assert (result["model"]["num_classes"], result["model"]["label_set"]) == (1000, "imagenet")
    assert len(result["predictions"]) == 5
    body, content_type = handler.module.output_fn(result, None)
    assert content_type == "application/json"
    assert json.loads(body) == result
