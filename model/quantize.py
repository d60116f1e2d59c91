"""Static int8 quantization of the exported network, calibrated and then verified
against the fp32 ONNX model on real photos that ship offline with scikit-image and
scikit-learn (calibration and verification use different photos).

Quantization is static QDQ: per-channel int8 weights, uint8 activations, ranges from
calibration. ONNX Runtime fuses the QDQ pairs into integer convolutions (VNNI where the
CPU has it), which runs MobileNetV2 in well under half the fp32 time. The same check
runs for every architecture and for imported ONNX models: where int8 does not agree, the
build stops and says to build fp32.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image, ImageOps

from model.export import io_names, softmax, strip_metadata

# skimage.data names ("motorcycle" is the left view of its stereo pair) and sklearn's
# sample images ("china", "flower"). Colour and grayscale, objects, scenes, textures.
CALIBRATION_PHOTOS = (
    "astronaut",
    "rocket",
    "motorcycle",
    "china",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "grass",
)
HELD_OUT_PHOTOS = ("chelsea", "coffee", "flower", "clock", "moon")
# Most of MobileNetV2's activations are ReLU6 outputs, bounded to [0, 6] by
# construction: MinMax keeps every one representable, at a resolution of 6/255. Only the
# linear bottleneck outputs and the logits are unclipped, where a percentile calibration
# could trade rare outliers for resolution; tried on a network with re-estimated batch
# norm statistics, it left the relative logit error where it was (0.225 against 0.235)
# at fifteen times the build time, and entropy calibration chose MinMax's ranges. MinMax
# is also exact and order-free (a minimum and a maximum), which keeps the archive
# byte-reproducible.
CALIBRATION_METHOD = CalibrationMethod.MinMax
# LayerNormalization (ConvNeXt, vision transformers) takes a 1-D scale per channel; the
# quantizer's default channel axis for it is 1, out of range, so it would warn for every
# such weight and fall back to one scale per tensor. Axis 0 is each channel's own scale.
PER_CHANNEL_AXES = {"LayerNormalization": 0}
CROP_SHARE = 0.75  # corner crops keep 3/4 of each side: new framings of the same photo


class QuantizationError(RuntimeError):
    """The int8 model does not agree closely enough with the fp32 model."""


@dataclass(frozen=True)
class Bounds:
    """What the int8 model must meet against the fp32 model on every held-out build.

    ImageNet itself is not available here, so these bound agreement with fp32, not
    accuracy. They are loose enough for the 1-2 point top-1 loss published for
    per-channel post-training int8 MobileNetV2, and far tighter than any broken
    quantization (wrong ranges, saturated or corrupted weights), which scrambles the
    ranking.
    """

    min_top1_agreement: float = 0.80  # int8's top-1 is fp32's on at least 80 % of views
    # fp32's top-1 is among int8's k answers on all views but, at most, one in twenty
    # (an unsure fp32 top-1 of a few percent may fall to sixth place).
    min_top1_in_topk: float = 0.95
    min_topk_overlap: float = 0.70  # on average 70 % of the top k agree (3.5 of five)
    # Probabilities: a trained model's confident answer must not move by more than 0.2.
    # (Random weights give flat probabilities, about 0.001 each, where this is vacuous.)
    max_dp: float = 0.20
    # RMS of the logit error over the RMS spread of the fp32 logits around their mean
    # (0.25 is a signal-to-noise ratio of 12 dB): scale-free, so it bites for random
    # weights too. Healthy int8 models sit far below it (random weights: 0.04); past it,
    # close calls flip often.
    max_relative_logit_error: float = 0.25


BOUNDS = Bounds()
TOP_K = 5
"""The rankings compare the top k = min(TOP_K, classes) classes, what the handler answers
with: every bound is reachable for any class count. With 5 classes or fewer both top-k
checks hold by construction, and top-1 agreement, the probabilities and the logit error
decide."""


@dataclass(frozen=True)
class Agreement:
    views: int
    k: int
    """The rankings' depth: min(`TOP_K`, classes)."""
    top1_agreement: float
    top1_in_topk: float
    topk_overlap: float
    max_dp: float
    relative_logit_error: float

    def failures(self, bounds: Bounds) -> list[str]:
        k = self.k
        checks = [
            ("top-1 agreement", self.top1_agreement, ">=", bounds.min_top1_agreement),
            (f"fp32 top-1 in int8 top-{k}", self.top1_in_topk, ">=", bounds.min_top1_in_topk),
            (f"top-{k} overlap", self.topk_overlap, ">=", bounds.min_topk_overlap),
            ("max |dp|", self.max_dp, "<=", bounds.max_dp),
            (
                "relative logit error",
                self.relative_logit_error,
                "<=",
                bounds.max_relative_logit_error,
            ),
        ]
        return [
            f"{name} {value:.3f} (needs {op} {limit:.2f})"
            for name, value, op, limit in checks
            if not (value >= limit if op == ">=" else value <= limit)
        ]

    def summary(self) -> str:
        return ", ".join(
            f"{field.name.replace('_', ' ').replace('topk', f'top{self.k}')} "
            f"{getattr(self, field.name):.3g}"
            for field in fields(self)
        )


def quantize_int8(
    fp32_model: bytes,
    preprocess: Callable[[Image.Image], np.ndarray],
    log: Callable[[str], None] = lambda _message: None,
) -> bytes:
    """The fp32 ONNX model quantized to int8, calibrated on ``CALIBRATION_PHOTOS``.

    ``preprocess`` turns an RGB photo into the [1,3,H,W] float32 network input. Raises
    `QuantizationError` when ONNX Runtime's quantizer cannot handle the graph.
    """
    input_name, _output = io_names(fp32_model)
    batches = [preprocess(view) for view in photo_views(CALIBRATION_PHOTOS)]
    log(
        f"quantizing to int8 (static QDQ, per-channel weights, {CALIBRATION_METHOD.name} "
        f"calibration on {len(batches)} views of {len(CALIBRATION_PHOTOS)} photos)"
    )
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch:
        source, prepared, quantized = (
            Path(scratch) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx")
        )
        source.write_bytes(fp32_model)
        try:
            quant_pre_process(str(source), str(prepared))
            quantize_static(
                str(prepared),
                str(quantized),
                _Batches(input_name, batches),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=CALIBRATION_METHOD,
                extra_options={"QDQOpTypePerChannelSupportToAxis": PER_CHANNEL_AXES},
            )
        except Exception as error:  # the quantizer raises many types on graphs it cannot do
            raise QuantizationError(
                f"ONNX Runtime cannot quantize this model to int8 ({type(error).__name__}: "
                f"{error}). Build with --precision fp32 instead."
            ) from error
        proto = onnx.load(str(quantized))
    strip_metadata(proto)
    return proto.SerializeToString(deterministic=True)


def verify_int8(
    fp32_model: bytes,
    int8_model: bytes,
    preprocess: Callable[[Image.Image], np.ndarray],
    bounds: Bounds | None = None,
    name: str = "model",
) -> Agreement:
    """Compare both models on ``HELD_OUT_PHOTOS``; raise past ``bounds`` (``BOUNDS``).
    ``name`` (the architecture) is for the message."""
    bounds = bounds or BOUNDS
    batches = [preprocess(view) for view in photo_views(HELD_OUT_PHOTOS)]
    reference, candidate = (_logits(model, batches) for model in (fp32_model, int8_model))
    agreement = compare(reference, candidate)
    failed = agreement.failures(bounds)
    if failed:
        raise QuantizationError(
            f"the int8 {name} disagrees with its fp32 export on {agreement.views} held-out "
            f"photo views: {'; '.join(failed)}. Build with --precision fp32 instead."
        )
    return agreement


def compare(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """Agreement of ``candidate`` logits with ``reference`` logits, one row per view."""
    k = min(TOP_K, reference.shape[1])
    topk_ref = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    topk_new = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    pairs = list(zip(topk_ref, topk_new, strict=True))
    centered = reference - reference.mean(axis=1, keepdims=True)
    return Agreement(
        views=len(reference),
        k=k,
        top1_agreement=float(np.mean(topk_ref[:, 0] == topk_new[:, 0])),
        top1_in_topk=float(np.mean([r[0] in n for r, n in pairs])),
        topk_overlap=float(np.mean([len(set(r) & set(n)) / k for r, n in pairs])),
        max_dp=float(np.abs(softmax(candidate) - softmax(reference)).max()),
        relative_logit_error=float(
            np.sqrt(np.mean((candidate - reference) ** 2) / np.mean(centered**2))
        ),
    )


def photo_views(names: Sequence[str]) -> Iterator[Image.Image]:
    """Each photo whole and mirrored, and four mirrored-or-not corner crops: fixed
    framings, so calibration (and so the archive) never depends on a random draw."""
    for name in names:
        photo = load_photo(name)
        width, height = photo.size
        crop_w, crop_h = int(width * CROP_SHARE), int(height * CROP_SHARE)
        yield photo
        yield ImageOps.mirror(photo)
        for index, (fx, fy) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
            left, top = fx * (width - crop_w), fy * (height - crop_h)
            crop = photo.crop((left, top, left + crop_w, top + crop_h))
            yield ImageOps.mirror(crop) if index % 2 else crop


def load_photo(name: str) -> Image.Image:
    """An RGB photo bundled with scikit-image or scikit-learn (no download)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        array = load_sample_image(f"{name}.jpg")
    elif name == "motorcycle":
        import skimage.data

        array = skimage.data.stereo_motorcycle()[0]
    else:
        import skimage.data

        array = getattr(skimage.data, name)()
    return Image.fromarray(np.asarray(array)).convert("RGB")


class _Batches(CalibrationDataReader):
    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self._input_name = input_name
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._input_name: batch}


def _logits(model: bytes, batches: list[np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the serving configuration
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    return np.concatenate([session.run([output_name], {input_name: b})[0] for b in batches])
