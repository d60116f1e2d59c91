"""Every tested torchvision architecture, with random weights: it packages, its ONNX
export computes what torch computes, the handler preprocesses exactly as the weights'
own transforms, and `serving.serve` serves it within the memory the archive records.
Slow: each architecture is exported once per change of model/ (tests/model/archives.py).
"""

from __future__ import annotations

import io
import json
import tarfile

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

from model.memory import estimate
from model.package import main
from model.weights import TESTED_ARCHS, architectures, default_weights
from serving.serve import LoadedHandler
from tests.model.archives import arch_archive, served
from tests.serving import images

pytestmark = pytest.mark.slow

PHOTOS = {
    "chelsea": skimage.data.chelsea,
    "astronaut": skimage.data.astronaut,
    "rocket": skimage.data.rocket,
    "china": lambda: load_sample_images().images[0],
}


def read_archive(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


@pytest.fixture(scope="module", params=TESTED_ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def archive(arch):
    return arch_archive(arch)


@pytest.fixture(scope="module")
def handler(archive):
    loaded = LoadedHandler(archive)
    yield loaded
    loaded.close()


def reference(arch: str):
    """torchvision's own transforms of the architecture's DEFAULT weights."""
    transforms = default_weights(arch).transforms()
    return lambda body: transforms(Image.open(io.BytesIO(body)).convert("RGB")).numpy()[None]


def test_the_tested_architectures_come_from_torchvisions_registry():
    assert set(TESTED_ARCHS) <= set(architectures())
    assert len(architectures()) > 50, "the whole registry, not a table of our own"


def test_an_unknown_architecture_is_refused_with_the_choices(tmp_path, capsys):
    assert (
        main(["--arch", "mobilenet_v9", "--weights", "random", "--out", str(tmp_path / "m.tar.gz")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --arch mobilenet_v9: not a torchvision classification model")
    assert "resnet50" in err
    assert len(err.splitlines()) == 1


def test_metadata_records_the_architecture_and_its_weights_transforms(arch, archive):
    files = read_archive(archive)
    metadata = json.loads(files["metadata.json"])
    transforms = default_weights(arch).transforms()
    assert (metadata["name"], metadata["architecture"], metadata["weights"]) == (
        arch,
        arch,
        "random",
    )
    assert metadata["precision"] == "fp32"
    assert metadata["preprocessing"] == {
        "resize_size": transforms.resize_size[0],
        "crop_size": transforms.crop_size[0],
        "interpolation": transforms.interpolation.value,
        "mean": transforms.mean,
        "std": transforms.std,
    }
    assert metadata["labels"] == default_weights(arch).meta["categories"]
    assert (metadata["num_classes"], metadata["label_set"]) == (1000, "imagenet")
    memory = estimate(files["model.onnx"], transforms.crop_size[0])
    assert (metadata["peak_rss_mb"], metadata["memory_mb_min"]) == (
        memory.peak_rss_mb,
        memory.memory_mb_min,
    )
    assert metadata["memory_mb_min"] % 1024 == 0
    assert metadata["memory_mb_min"] >= metadata["peak_rss_mb"]


def test_onnx_runtime_matches_torch(arch, archive, handler):
    """Real photos through the serving preprocessing, then the exported network in ONNX
    Runtime against the same random network in torch: probabilities within 1e-4, and
    logits within 1e-4 of their own spread (random MobileNets' logits are about 1e-10,
    where an absolute bound alone proves nothing)."""
    import torch

    from model.weights import load_network

    batch = np.concatenate(
        [
            handler.module.preprocess(
                handler.module.input_fn(images.encode(Image.fromarray(load()), "PNG"), None),
                handler.model,
            )
            for load in PHOTOS.values()
        ]
    )
    network = load_network("random", arch).module
    with torch.no_grad():
        expected = network(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(read_archive(archive)["model.onnx"])
    (actual,) = session.run(["logits"], {"input": batch})
    assert actual.shape == (len(PHOTOS), 1000)
    spread = np.sqrt(np.mean((expected - expected.mean(1, keepdims=True)) ** 2))
    assert np.abs(actual - expected).max() <= 1e-4 * max(spread, 1.0)
    assert np.abs(actual - expected).max() <= 1e-3 * spread
    p_actual, p_expected = (np.exp(x - x.max(1, keepdims=True)) for x in (actual, expected))
    p_actual, p_expected = (p / p.sum(1, keepdims=True) for p in (p_actual, p_expected))
    assert np.abs(p_actual - p_expected).max() <= 1e-4


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_preprocessing_matches_the_weights_transforms(arch, handler, name, image_format):
    body = images.encode(Image.fromarray(PHOTOS[name]()), image_format)
    expected = reference(arch)(body)
    image = handler.module.input_fn(body, "application/octet-stream")
    actual = handler.module.preprocess(image, handler.model)
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(224, 300), (256, 256), (237, 500), (640, 233), (50, 40)])
def test_preprocessing_matches_at_edge_sizes(arch, handler, size):
    photo = Image.fromarray(skimage.data.coffee()).resize(size, Image.Resampling.BICUBIC)
    body = images.encode(photo, "PNG")
    image = handler.module.input_fn(body, None)
    actual = handler.module.preprocess(image, handler.model)
    np.testing.assert_allclose(actual, reference(arch)(body), rtol=0, atol=1e-5)


def test_model_serve_answers_within_the_recorded_memory(arch, archive):
    files = read_archive(archive)
    metadata = json.loads(files["metadata.json"])
    memory = estimate(files["model.onnx"], metadata["preprocessing"]["crop_size"])
    with served(archive) as server:
        for case in images.good_cases()[:4]:
            response = httpx.post(
                f"{server.url}/invocations",
                content=case.body,
                headers={"content-type": case.content_type},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["predictions"]) == 5
            assert body["model"]["name"] == arch
            assert body["model"]["version"] == metadata["version"]
            assert (body["model"]["num_classes"], body["model"]["label_set"]) == (
                1000,
                "imagenet",
            )
        peak = server.peak_rss_mib()
    assert peak <= memory.model_mb, f"{arch}: {peak:.0f} MiB > estimated {memory.model_mb}"


def test_int8_for_an_architecture_besides_the_default():
    """The int8 path (quantization and its agreement check) is per architecture."""
    archive = arch_archive("resnet18", "int8")
    files = read_archive(archive)
    metadata = json.loads(files["metadata.json"])
    assert (metadata["name"], metadata["precision"]) == ("resnet18", "int8")
    import onnx

    ops = {node.op_type for node in onnx.load_from_string(files["model.onnx"]).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    loaded = LoadedHandler(archive)
    try:
        image = loaded.module.input_fn(images.good_cases()[0].body, "image/jpeg")
        assert len(loaded.module.predict_fn(image, loaded.model)["predictions"]) == 5
    finally:
        loaded.close()


@pytest.mark.parametrize("name", ["", " leading space", "a/b", "x" * 65, "<script>"])
def test_a_name_the_ui_cannot_show_is_refused(tmp_path, capsys, name):
    out = tmp_path / "m.tar.gz"
    assert main(["--weights", "random", "--name", name, "--out", str(out)]) == 2
    assert "must be 1 to 64 letters" in capsys.readouterr().err
    assert not out.exists()


def test_a_prediction_through_the_local_api():
    """resnet18 behind the real proxy and API of `python -m local`."""
    from local.process import local_runtime

    archive = arch_archive("resnet18")
    with local_runtime(archive) as runtime:
        response = httpx.post(
            f"{runtime.api_url}/predict",
            content=images.good_cases()[0].body,
            headers={"content-type": "image/jpeg"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "resnet18"
    assert len(body["predictions"]) == 5
    assert body["needs_review"] is True  # random weights never reach the threshold
