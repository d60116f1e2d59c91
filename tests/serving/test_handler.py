"""``code/inference.py`` through the four toolkit functions, on the tiny model."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.serving import images


def run_handler(handler, body, content_type, accept="application/json"):
    module = handler.module
    data = module.input_fn(body, content_type)
    prediction = module.predict_fn(data, handler.model)
    return module.output_fn(prediction, accept)


def decoded(handler, body: bytes) -> Image.Image:
    """What the handler makes of the bytes before resizing: upright 8-bit RGB."""
    module = handler.module
    image = module.input_fn(body, "application/octet-stream")
    return module.decode_rgb(image, handler.model.resize_size)


def full_resolution(handler, body: bytes) -> np.ndarray:
    """Preprocessing from every decoded pixel, with no early shrinking."""
    model = handler.model
    full = Image.open(io.BytesIO(body)).convert("RGB")
    crop = handler.module.resize_center_crop(
        full, model.resize_size, model.crop_size, model.resample
    )
    return np.asarray(crop).transpose(2, 0, 1)[np.newaxis] * model.scale + model.offset


def preprocessed(handler, body: bytes) -> np.ndarray:
    image = handler.module.input_fn(body, "application/octet-stream")
    return handler.module.preprocess(image, handler.model)


@pytest.mark.parametrize("case", images.good_cases(), ids=lambda case: case.name)
def test_every_accepted_format_gives_a_top5(handler, case):
    body, content_type = run_handler(handler, case.body, case.content_type)
    assert content_type == "application/json"
    result = json.loads(body)
    predictions = result["predictions"]
    assert len(predictions) == 5
    assert set(predictions[0]) == {"label", "index", "probability"}
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 < p <= 1 for p in probabilities)
    assert len({p["index"] for p in predictions}) == 5
    assert all(p["label"] == f"class {p['index']}" for p in predictions)
    assert result["model"] == {
        "name": "mobilenet_v2",
        "version": "tiny0000test",
        "weights": "random",
        "precision": "fp32",
        "num_classes": 1000,
        "label_set": "imagenet",
    }


def test_archives_from_before_precision_and_labels(tmp_path):
    """Archives built before the precision option hold the fp32 export; before --labels,
    every archive answered with ImageNet's classes."""
    from serving.serve import LoadedHandler
    from tests.serving.conftest import write_tiny_model_dir

    model_dir = write_tiny_model_dir(tmp_path)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    for key in ("precision", "num_classes", "label_set"):
        del metadata[key]
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    older = LoadedHandler(model_dir)
    try:
        info = older.model.info
        assert (info["precision"], info["num_classes"], info["label_set"]) == (
            "fp32",
            1000,
            "imagenet",
        )
    finally:
        older.close()


@pytest.mark.parametrize("classes", [2, 3, 5, 7])
def test_a_model_of_n_classes_answers_with_min_5_n(tmp_path, classes):
    from serving.serve import LoadedHandler
    from tests.serving.conftest import write_tiny_model_dir

    few = LoadedHandler(write_tiny_model_dir(tmp_path, classes))
    try:
        body, _ = run_handler(few, images.good_cases()[0].body, "image/jpeg")
    finally:
        few.close()
    result = json.loads(body)
    predictions = result["predictions"]
    assert len(predictions) == min(5, classes)
    assert len({p["index"] for p in predictions}) == len(predictions)
    assert all(p["label"] == f"class {p['index']}" for p in predictions)
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    if classes <= 5:
        assert sum(probabilities) == pytest.approx(1.0)
    assert (result["model"]["num_classes"], result["model"]["label_set"]) == (classes, "custom")


def test_labels_that_disagree_with_the_model_stop_it_loading(tmp_path):
    """A model of 1000 outputs with 3 labels would mislabel every answer."""
    from serving.serve import LoadedHandler
    from tests.serving.conftest import write_tiny_model_dir

    model_dir = write_tiny_model_dir(tmp_path)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["labels"] = ["a", "b", "c"]
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"answers \[1, 1000\] .* 3 labels"):
        LoadedHandler(model_dir)


@pytest.mark.parametrize("case", images.bad_cases(), ids=lambda case: case.name)
def test_every_bad_input_is_a_client_error(handler, case):
    module = handler.module
    with pytest.raises(module.RequestError) as raised:
        run_handler(handler, case.body, case.content_type)
    error = raised.value
    assert isinstance(error, module.BaseInferenceToolkitError)
    assert (error.status_code, error.code) == (case.status, case.code)
    body = json.loads(error.message)
    assert body == {"error": {"code": case.code, "message": error.detail}}
    assert error.detail.endswith(".")
    assert "\n" not in error.message, "the toolkit appends a traceback after the first line"
    assert error.phrase
    assert "\n" not in error.phrase


@pytest.mark.parametrize("body", [None, bytearray(), memoryview(b"")])
def test_empty_bodies_of_any_type(handler, body):
    with pytest.raises(handler.module.RequestError, match="empty_body"):
        handler.module.input_fn(body, "image/jpeg")


def test_text_bodies_are_refused(handler):
    # The toolkit decodes application/json and text/csv bodies to str before input_fn.
    with pytest.raises(handler.module.RequestError, match="unsupported_content_type"):
        handler.module.input_fn("aGVsbG8=", None)


def test_bodies_arrive_as_bytearray_from_the_model_server(handler):
    case = images.good_cases()[0]
    body, _ = run_handler(handler, bytearray(case.body), "image/jpeg")
    assert len(json.loads(body)["predictions"]) == 5


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "text/html, application/*;q=0.8"]
)
def test_json_is_answered_to_compatible_accepts(handler, accept):
    body, content_type = run_handler(handler, images.good_cases()[0].body, "image/jpeg", accept)
    assert content_type == "application/json"
    assert json.loads(body)["predictions"]


def test_other_accepts_are_refused(handler):
    with pytest.raises(handler.module.RequestError) as raised:
        run_handler(handler, images.good_cases()[0].body, "image/jpeg", "text/csv")
    assert (raised.value.status_code, raised.value.code) == (406, "unsupported_accept")


def test_exif_orientation_is_applied(handler):
    upright = decoded(handler, images.jpeg_with_orientation(6))
    # Orientation 6 is "rotate 90 degrees clockwise to display": left (red) goes on top.
    assert upright.size == (100, 200)
    assert _close(upright.getpixel((50, 20)), images.RED)
    assert _close(upright.getpixel((50, 180)), images.BLUE)
    assert decoded(handler, images.jpeg_with_orientation(1)).size == (200, 100)


def test_transparent_pixels_are_white(handler):
    white = preprocessed(handler, images.encode(Image.new("RGB", (64, 48), images.WHITE), "PNG"))
    np.testing.assert_array_equal(preprocessed(handler, images.transparent_rgba()), white)
    np.testing.assert_array_equal(preprocessed(handler, images.palette_with_transparency()), white)


def test_16bit_grayscale_is_scaled_not_clipped(handler):
    assert decoded(handler, images.gray16(65_535)).getpixel((0, 0)) == images.WHITE
    assert decoded(handler, images.gray16(32_896)).getpixel((0, 0)) == (128, 128, 128)
    assert decoded(handler, images.gray16(0)).getpixel((0, 0)) == (0, 0, 0)


def test_gif_uses_the_first_frame(handler):
    assert _close(decoded(handler, images.animated_gif()).getpixel((10, 10)), images.RED)


def test_cmyk_jpeg_keeps_its_colours(handler):
    rgb = np.asarray(images.photo(), dtype=np.float32)
    cmyk = np.asarray(decoded(handler, images.encode(images.photo().convert("CMYK"), "JPEG")))
    assert np.abs(cmyk.astype(np.float32) - rgb).mean() < 6


def test_large_jpeg_is_decoded_at_reduced_scale(handler):
    big = images.photo().resize((4000, 2660), Image.Resampling.BICUBIC)
    body = images.encode(big, "JPEG", quality=90)
    fast = decoded(handler, body)
    # DCT scaling to 1/4 keeps at least twice the 232 px resize target.
    assert fast.size == (1000, 665)
    assert np.abs(preprocessed(handler, body) - full_resolution(handler, body)).mean() < 0.01


def test_large_multi_picture_jpeg_is_decoded_at_reduced_scale(handler):
    big = images.photo().resize((4000, 2660), Image.Resampling.BICUBIC)
    body = images.encode(big, "MPO", save_all=True, append_images=[big])
    assert decoded(handler, body).size == (1000, 665)


def test_large_png_is_reduced_before_resizing(handler):
    body = images.encode(images.photo().resize((3000, 2000), Image.Resampling.BICUBIC), "PNG")
    # 2000 // (2 * 232) = 4: a box reduction to 750x500, still twice the resize target.
    assert decoded(handler, body).size == (750, 500)
    assert np.abs(preprocessed(handler, body) - full_resolution(handler, body)).mean() < 0.01


def test_extreme_aspect_ratios_cost_no_more_than_a_square(handler):
    strip = Image.new("RGB", (16_000, 40), images.BLUE)
    batch = preprocessed(handler, images.encode(strip, "PNG"))
    assert batch.shape == (1, 3, 224, 224)


def test_toolkit_error_base_is_used_when_installed(tiny_model_dir: Path):
    """With the toolkit importable, errors are its BaseInferenceToolkitError, so its
    transformer answers them with their status instead of a 500."""
    script = textwrap.dedent(
        f"""
        import sys, types
        errors = types.ModuleType("sagemaker_inference.errors")
        class BaseInferenceToolkitError(Exception):
            def __init__(self, status_code, message, phrase):
                self.status_code, self.message, self.phrase = status_code, message, phrase
        errors.BaseInferenceToolkitError = BaseInferenceToolkitError
        sys.modules["sagemaker_inference"] = types.ModuleType("sagemaker_inference")
        sys.modules["sagemaker_inference.errors"] = errors
        sys.path.insert(0, {str(tiny_model_dir / "code")!r})
        import inference
        assert issubclass(inference.RequestError, BaseInferenceToolkitError)
        try:
            inference.input_fn(b"", "image/png")
        except BaseInferenceToolkitError as error:
            print(error.status_code, error.message)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    status, body = result.stdout.strip().split(" ", 1)
    assert status == "400"
    assert json.loads(body)["error"]["code"] == "empty_body"


def test_serving_never_imports_torch(tiny_model_dir: Path):
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from serving.serve import create_app
        from tests.serving.asgi import TestClient
        with TestClient(create_app(Path({str(tiny_model_dir)!r}))) as client:
            jpeg = open({str(tiny_model_dir / "probe.jpg")!r}, "rb").read()
            assert client.post("/invocations", content=jpeg).status_code == 200
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
        print(heavy)
        """
    )
    (tiny_model_dir / "probe.jpg").write_bytes(images.good_cases()[0].body)
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root
    )
    assert result.stdout.strip() == "[]"


def _close(pixel, expected, tolerance=30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF"])
def test_damaged_files_never_crash_the_handler(handler, image_format):
    """Flip, cut and overwrite bytes of a valid file: every outcome is a top-5 or a 4xx."""
    original = images.encode(images.photo().resize((64, 48)), image_format)
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(300):
        damaged = bytearray(original)
        for position in rng.integers(0, len(damaged), size=rng.integers(1, 12)):
            damaged[position] = rng.integers(0, 256)
        if rng.random() < 0.3:
            damaged = damaged[: rng.integers(1, len(damaged))]
        outcomes.add(outcome(handler, bytes(damaged)))
    assert all(status == 200 or 400 <= status < 500 for status in outcomes)


def outcome(handler, body: bytes) -> int:
    """The status the toolkit would answer: 200 with a top-5, or the client error's."""
    try:
        answer, _ = run_handler(handler, body, "application/octet-stream")
    except handler.module.RequestError as error:
        return error.status_code
    assert len(json.loads(answer)["predictions"]) == 5
    return 200
