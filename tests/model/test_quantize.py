"""The int8 build's check against the fp32 model: what it measures, that it passes on a
good quantization and that it stops a bad one with a clear message. Slow: torch exports."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from artifact.package_exit import EXIT_INT8_REFUSED
from model import quantize
from model.package import main
from model.quantize import Bounds, QuantizationError, compare, verify_int8
from model.weights import reference_preprocess

pytestmark = pytest.mark.slow
PREPROCESS = reference_preprocess("mobilenet_v2")


@pytest.fixture(scope="module")
def models() -> tuple[bytes, bytes]:
    """The random network's fp32 export and its int8 quantization."""
    from model import export
    from model.weights import load_network

    fp32 = export.export_onnx(load_network("random").module, 224)
    return fp32, quantize.quantize_int8(fp32, PREPROCESS)


def test_compare_measures_agreement():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(4, 1000)) * 3
    same = compare(reference, reference)
    assert (same.top1_agreement, same.top1_in_topk, same.topk_overlap) == (1, 1, 1)
    assert (same.max_dp, same.relative_logit_error, same.views, same.k) == (0, 0, 4, 5)
    assert same.failures(Bounds()) == []
    shuffled = compare(reference, np.roll(reference, 1, axis=1))
    assert shuffled.top1_agreement == shuffled.top1_in_topk == 0
    assert shuffled.relative_logit_error > 1
    assert len(shuffled.failures(Bounds())) == 5


@pytest.mark.parametrize("classes", [2, 3, 4, 5, 6, 1000])
def test_every_bound_is_reachable_for_any_class_count(classes):
    """The rankings are k = min(5, classes) deep: a model of 3 classes that int8 leaves
    exactly as it was agrees fully (a fixed depth of 5 gave it 0.6 top-5 overlap)."""
    reference = np.random.default_rng(classes).normal(size=(30, classes)) * 3
    same = compare(reference, reference)
    assert same.k == min(5, classes)
    assert (same.top1_agreement, same.top1_in_topk, same.topk_overlap) == (1, 1, 1)
    assert same.failures(Bounds()) == []
    if classes <= 5:
        assert f"top{classes} overlap 1" in same.summary()


def test_with_few_classes_top1_decides():
    """3 classes, and int8 swaps a close first two on 10 of 30 views: top-3 overlap is
    whole by construction, so top-1 agreement (0.667) is what fails, and says so."""
    reference = np.tile([2.1, 2.0, 0.0], (30, 1))
    candidate = reference.copy()
    candidate[:10] = [2.0, 2.1, 0.0]
    failures = compare(reference, candidate).failures(Bounds())
    assert failures == ["top-1 agreement 0.667 (needs >= 0.80)"]


def test_calibration_and_held_out_photos_are_disjoint():
    assert not set(quantize.CALIBRATION_PHOTOS) & set(quantize.HELD_OUT_PHOTOS)
    views = list(quantize.photo_views(quantize.HELD_OUT_PHOTOS))
    assert len(views) == 6 * len(quantize.HELD_OUT_PHOTOS)
    assert all(view.mode == "RGB" for view in views)


def test_good_quantization_passes(models):
    fp32, int8 = models
    agreement = verify_int8(fp32, int8, PREPROCESS)
    assert agreement.views == 6 * len(quantize.HELD_OUT_PHOTOS)
    assert agreement.failures(quantize.BOUNDS) == []
    assert agreement.relative_logit_error > 0, "int8 is not the fp32 model"


def test_quantization_is_deterministic(models):
    fp32, int8 = models
    assert quantize.quantize_int8(fp32, PREPROCESS) == int8


def test_corrupted_int8_model_is_refused(models):
    """Classifier rows shifted by one class: every answer is mislabelled."""
    fp32, int8 = models
    proto = onnx.load_from_string(int8)
    (classifier,) = [
        tensor
        for tensor in proto.graph.initializer
        if tensor.data_type == onnx.TensorProto.INT8 and tuple(tensor.dims) == (1000, 1280)
    ]
    shifted = np.roll(numpy_helper.to_array(classifier), 1, axis=0)
    classifier.CopyFrom(numpy_helper.from_array(shifted, classifier.name))
    with pytest.raises(QuantizationError, match="top-1 agreement") as raised:
        verify_int8(fp32, proto.SerializeToString(), PREPROCESS)
    assert "--precision fp32" in str(raised.value)


def test_build_stops_when_a_bound_is_not_met(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quantize, "BOUNDS", Bounds(min_top1_agreement=1.01))
    out = tmp_path / "model.tar.gz"
    assert main(["--weights", "random", "--out", str(out)]) == EXIT_INT8_REFUSED
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: the int8 mobilenet_v2 disagrees with its fp32 export")
    assert "top-1 agreement 1.000 (needs >= 1.01)" in err
    assert "--precision fp32" in err
    assert not out.exists()


def test_fp32_needs_no_quantization_check(tmp_path, monkeypatch):
    monkeypatch.setattr(quantize, "BOUNDS", Bounds(min_top1_agreement=1.01))
    out = tmp_path / "model.tar.gz"
    assert main(["--weights", "random", "--precision", "fp32", "--out", str(out)]) == 0
    with tarfile.open(out) as tar:
        metadata = json.loads(tar.extractfile("metadata.json").read())
    assert metadata["precision"] == "fp32"


def test_packaging_needs_no_network_for_photos(monkeypatch):
    """The calibration photos ship inside scikit-image and scikit-learn."""
    import socket

    def refuse(*_args, **_kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    names = (*quantize.CALIBRATION_PHOTOS, *quantize.HELD_OUT_PHOTOS)
    assert all(quantize.load_photo(name).mode == "RGB" for name in names)
