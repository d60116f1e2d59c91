"""Build ``model.tar.gz`` for SageMaker: an image classifier as ONNX plus the serving handler.

    python -m model.package [--arch mobilenet_v2] --weights imagenet|random|PATH
                            [--labels labels.txt] [--precision int8|fp32] [--name NAME]
                            --out build/model.tar.gz
    python -m model.package --onnx model.onnx --labels labels.txt
                            [--preprocessing prep.json] [--resize-size N] [--crop-size N]
                            [--interpolation MODE] [--mean R,G,B] [--std R,G,B]
                            [--precision int8|fp32] [--name NAME] --out build/model.tar.gz

The first form exports a torchvision classification model (any name of torchvision's
model registry) with the preprocessing of its weights; the second packages an existing
ONNX classifier. Same inputs, same bytes: the version in metadata.json is derived from
the content.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from artifact.labels import LabelsError, read_labels
from artifact.metadata import DEFAULT_ARCH
from artifact.output import OutputPathError, check_output_path
from artifact.package_exit import EXIT_INT8_REFUSED, EXIT_UNUSABLE
from model.labels import label_set
from model.preprocessing import (
    FIELDS,
    IMAGENET_DEFAULTS,
    INTERPOLATIONS,
    Preprocessing,
    PreprocessingError,
    read_preprocessing_file,
)
from model.stopping import run_stoppable
from shared.registry import ARCHIVE_SUFFIX
from shared.serverless import SERVERLESS_MEMORY_MB

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

CODE_DIR = Path(__file__).resolve().parent.parent / "serving" / "code"
CODE_FILES = ("inference.py",)
# int8 by default: it is what meets the endpoint's latency target (docs/model.md,
# "Precision"; ADR 8); fp32 is the exact export, for when int8 fails its check or is not
# wanted. An imported ONNX model is kept as it is unless --precision says otherwise.
PRECISIONS = ("int8", "fp32")
DEFAULT_PRECISION = "int8"
NAME = re.compile(r"^[\w.+-][\w .+-]{0,63}$")
"""A model name as the web UI shows it: letters, digits, spaces, `._+-`, 1-64 long."""


class PackageError(ValueError):
    """The packaging inputs are unusable; the message says why (exit status 2)."""


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    size: int
    version: str
    weights: str
    precision: str
    name: str
    num_classes: int
    memory_mb_min: int


def build_archive(
    weights: str,
    out: Path,
    log: Callable[[str], None] = lambda _message: None,
    precision: str = DEFAULT_PRECISION,
    *,
    arch: str = DEFAULT_ARCH,
    labels: Path | None = None,
    name: str | None = None,
) -> ArchiveInfo:
    """Export a torchvision architecture, verify and package it.

    ``labels`` is a file with one class name per line, for a head of that many outputs
    (None: ImageNet's 1000 classes). Raises ``OutputPathError`` (``out`` cannot be
    written, checked first), ``WeightsError``, ``LabelsError``, ``PackageError``,
    ``ExportMismatchError`` (the fp32 export disagrees with torch, checked for every
    precision) or ``QuantizationError`` (the int8 model disagrees with the fp32 one).
    """
    _check_precision(precision)
    check_output_path(Path(out))
    name = _checked_name(arch if name is None else name)
    class_names = read_labels(labels) if labels is not None else None
    started = time.monotonic()
    log(f"loading {arch} weights: {weights}")
    # Torch loads only here, so `python -m model.package --help` and serving stay fast.
    from model import export
    from model import weights as weights_mod
    from model.labels import imagenet_labels

    network = weights_mod.load_network(
        weights, arch, None if class_names is None else len(class_names)
    )
    prep = weights_mod.preprocessing(arch)
    log(f"exporting to ONNX (opset {export.OPSET}, dynamic batch)")
    onnx_model = export.export_onnx(network.module, prep.crop_size)
    parity = export.check_parity(network.module, onnx_model, prep.crop_size)
    log(
        f"ONNX Runtime matches torch: max |dp| = {parity.max_dp:.1e}, "
        f"max |dlogit| = {parity.max_dlogit:.1e} ({parity.relative_dlogit:.1e} of the spread)"
    )
    if precision == "int8":
        onnx_model = _int8(onnx_model, weights_mod.reference_preprocess(arch), arch, log)
    metadata = {
        "name": name,
        "architecture": arch,
        "weights": network.weights_id,
        "precision": precision,
        "preprocessing": prep.as_metadata(),
        "onnx": {"input": export.INPUT_NAME, "output": export.OUTPUT_NAME, "opset": export.OPSET},
    }
    labels_out = class_names if class_names is not None else imagenet_labels()
    return _write(onnx_model, metadata, labels_out, prep.crop_size, Path(out), log, started)


def import_onnx(
    onnx_path: Path,
    labels: Path,
    out: Path,
    *,
    log: Callable[[str], None] = lambda _message: None,
    precision: str | None = None,
    preprocessing: Preprocessing = IMAGENET_DEFAULTS,
    name: str | None = None,
) -> ArchiveInfo:
    """Package an existing ONNX image classifier after checking it.

    ``precision`` None keeps the model as it is (recorded as int8 if it is already
    quantized, else fp32); "int8" quantizes an fp32 model with the same check as an
    export. Raises ``OutputPathError``, ``OnnxImportError``, ``LabelsError``,
    ``PackageError`` or ``QuantizationError``.
    """
    if precision is not None:
        _check_precision(precision)
    check_output_path(Path(out))
    onnx_path = Path(onnx_path)
    if name is None:
        name = _checked_name(onnx_path.stem, "the ONNX file's name; pass --name")
    else:
        name = _checked_name(name)
    class_names = read_labels(labels)
    from model.onnx_import import check_classifier

    started = time.monotonic()
    log(f"checking {onnx_path} against {len(class_names)} labels and {_described(preprocessing)}")
    imported = check_classifier(onnx_path, preprocessing, len(class_names))
    onnx_model = imported.model
    if precision is not None and imported.quantized:
        raise PackageError(
            f"--onnx {onnx_path}: the model is already quantized; leave out --precision to "
            "package it as it is"
        )
    if precision == "int8":
        onnx_model = _int8(onnx_model, preprocessing.reference(), name, log)
    recorded = precision or ("int8" if imported.quantized else "fp32")
    digest = hashlib.sha256(imported.model).hexdigest()
    metadata = {
        "name": name,
        "architecture": None,
        "weights": f"onnx:{digest[:12]}",
        "precision": recorded,
        "preprocessing": preprocessing.as_metadata(),
        "onnx": {
            "input": imported.input_name,
            "output": imported.output_name,
            "opset": imported.opset,
        },
    }
    return _write(
        onnx_model, metadata, class_names, preprocessing.crop_size, Path(out), log, started
    )


def _described(prep: Preprocessing) -> str:
    """The preprocessing as the flags that set it would spell it."""

    def floats(values: tuple[float, ...]) -> str:
        return ",".join(f"{value:g}" for value in values)

    return (
        f"resize {prep.resize_size}, crop {prep.crop_size}, {prep.interpolation}, "
        f"mean {floats(prep.mean)}, std {floats(prep.std)}"
    )


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")


def _checked_name(name: str, source: str = "--name") -> str:
    if not NAME.match(name):
        raise PackageError(
            f"model name {name!r} (from {source}) must be 1 to 64 letters, digits, spaces "
            "or ._+- and not start with a space"
        )
    return name


def _int8(
    fp32_model: bytes,
    preprocess: Callable[[Image.Image], np.ndarray],
    name: str,
    log: Callable[[str], None],
) -> bytes:
    """Quantize, then prove the int8 model still agrees with the verified fp32 one."""
    from model import quantize

    int8_model = quantize.quantize_int8(fp32_model, preprocess, log)
    agreement = quantize.verify_int8(fp32_model, int8_model, preprocess, name=name)
    log(f"int8 agrees with fp32 on held-out photos: {agreement.summary()}")
    return int8_model


def _write(
    onnx_model: bytes,
    metadata: Mapping[str, object],
    labels: list[str],
    crop_size: int,
    out: Path,
    log: Callable[[str], None],
    started: float,
) -> ArchiveInfo:
    """Add what every archive records (labels, memory), then write it reproducibly."""
    from artifact.archive import write_reproducible_tar_gz
    from model.memory import estimate

    memory = estimate(onnx_model, crop_size)
    metadata = {
        **metadata,
        "labels": labels,
        "num_classes": len(labels),
        "label_set": label_set(labels),
        "peak_rss_mb": memory.peak_rss_mb,
        "memory_mb_min": memory.memory_mb_min,
    }
    log(
        f"serving needs at most {memory.peak_rss_mb} MiB (the largest image it accepts "
        f"included): memory_mb_min {memory.memory_mb_min} (SageMaker Serverless memory in "
        "MB; the stack's serverlessMemoryMb must be at least this)"
    )
    largest = SERVERLESS_MEMORY_MB[-1]
    if memory.memory_mb_min > largest:
        log(
            f"warning: that is more than SageMaker Serverless offers ({largest} MB); "
            "serve it from a real-time endpoint or choose a smaller model"
        )
    files = {"model.onnx": onnx_model}
    for code_file in CODE_FILES:
        files[f"code/{code_file}"] = (CODE_DIR / code_file).read_bytes()
    version = content_version(files, metadata)
    files["metadata.json"] = _json_bytes({**metadata, "version": version})
    try:
        write_reproducible_tar_gz(files, out)
    except OSError as error:
        raise PackageError(f"--out {out}: cannot write it ({error.strerror or error})") from None
    info = ArchiveInfo(
        path=out,
        size=out.stat().st_size,
        version=version,
        weights=str(metadata["weights"]),
        precision=str(metadata["precision"]),
        name=str(metadata["name"]),
        num_classes=len(labels),
        memory_mb_min=memory.memory_mb_min,
    )
    log(
        f"wrote {out} ({info.size / 1e6:.1f} MB): name {json.dumps(info.name)}, version "
        f"{version}, weights {info.weights}, precision {info.precision}, "
        f"{info.num_classes} classes"
    )
    log(f"done in {time.monotonic() - started:.1f} s")
    return info


def content_version(files: dict[str, bytes], metadata: dict[str, object]) -> str:
    """Hash of every archive entry and of the metadata, before the version is added."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    digest.update(_json_bytes(metadata))
    return digest.hexdigest()[:12]


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _three_floats(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 3 numbers such as 0.5,0.5,0.5") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not 3 numbers (R,G,B)")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model.package",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights",
        help="'imagenet' (torchvision's pretrained DEFAULT weights of --arch, downloaded), "
        "'random' (untrained, offline) or the path of a state_dict of --arch",
    )
    source.add_argument(
        "--onnx", type=Path, help="package this ONNX image classifier (needs --labels)"
    )
    parser.add_argument(
        "--arch",
        help=f"with --weights: a torchvision classification model, e.g. {DEFAULT_ARCH} "
        "(default), mobilenet_v3_large, resnet18, resnet50, efficientnet_b0, convnext_tiny",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        help="class names, one per line in output order (default with --weights: ImageNet's 1000)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="int8 (default with --weights): statically quantized, about twice as fast, "
        "checked against fp32 on held-out photos; fp32: the exact export. With --onnx the "
        "model is kept as it is unless this is given",
    )
    parser.add_argument("--name", help="the model's name in responses (default: --arch)")
    prep = parser.add_argument_group(
        "preprocessing of an --onnx model (default: ImageNet's: resize 256, crop 224, "
        "bilinear, ImageNet mean and std); the flags override the file"
    )
    prep.add_argument(
        "--preprocessing", type=Path, help=f"a JSON object with any of {', '.join(FIELDS)}"
    )
    prep.add_argument("--resize-size", type=int, help="short side after resizing, in pixels")
    prep.add_argument("--crop-size", type=int, help="side of the centre crop, in pixels")
    prep.add_argument("--interpolation", choices=INTERPOLATIONS)
    prep.add_argument("--mean", type=_three_floats, help="R,G,B on [0, 1] pixel values")
    prep.add_argument("--std", type=_three_floats, help="R,G,B on [0, 1] pixel values")
    parser.add_argument(
        "--out",
        default="build/model.tar.gz",
        help="the archive to write, a name ending in .tar.gz (default build/model.tar.gz)",
    )
    args = parser.parse_args(argv)
    prep_flags = [field for field in (*FIELDS, "preprocessing") if getattr(args, field)]
    if args.onnx is not None:
        if args.labels is None:
            parser.error("--onnx needs --labels (one class name per line)")
        if args.arch is not None:
            parser.error("--arch is for --weights; an --onnx model brings its own network")
    elif prep_flags:
        flags = ", ".join("--" + flag.replace("_", "-") for flag in prep_flags)
        parser.error(f"{flags}: with --weights the preprocessing comes from the weights")
    return args


def _preprocessing(args: argparse.Namespace) -> Preprocessing:
    """ImageNet's defaults, then the file's values, then the flags'."""
    values = {} if args.preprocessing is None else read_preprocessing_file(args.preprocessing)
    flags = {field: getattr(args, field) for field in FIELDS if getattr(args, field) is not None}
    try:
        return Preprocessing.from_mapping({**values, **flags}, IMAGENET_DEFAULTS)
    except PreprocessingError as error:
        raise PreprocessingError(f"preprocessing: {error}") from error


def check_archive_out(text: str) -> Path:
    """`--out` as typed: a file path (checked by `check_output_path`) whose name ends in
    `.tar.gz`, which SageMaker's model data and the stack's `model` key tell an archive
    by. A trailing slash names a folder, which `Path` would silently drop."""
    where = f"--out {text}"
    if text.endswith(("/", "\\")):
        raise OutputPathError(
            f"{where}: ends in /, which names a folder; give the archive's file name "
            f"(e.g. {text}model.tar.gz)"
        )
    out = Path(text)
    check_output_path(out)
    if not out.name.endswith(ARCHIVE_SUFFIX):
        raise OutputPathError(
            f"{where}: is not a {ARCHIVE_SUFFIX} name; SageMaker and the stack's model key "
            f"take a gzipped tar (e.g. {out.with_name(out.name.split('.')[0] + ARCHIVE_SUFFIX)})"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    # ONNX Runtime (1.29+; export parity, int8 calibration) sends usage telemetry unless
    # this is set before it initialises (its Privacy.md); a packager has no business
    # calling out, and offline it cannot.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    args = parse_args(argv)
    try:
        # Before torch loads, which alone takes seconds.
        args.out = check_archive_out(args.out)
    except OutputPathError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    return run_stoppable("model.package", lambda: _build(args))


def _build(args: argparse.Namespace) -> int:
    # Torch loads here, once Ctrl-C is handled (its import alone takes seconds).
    from model.export import ExportMismatchError
    from model.onnx_import import OnnxImportError
    from model.quantize import QuantizationError
    from model.weights import WeightsError

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        if args.onnx is not None:
            info = import_onnx(
                args.onnx,
                args.labels,
                args.out,
                log=log,
                precision=args.precision,
                preprocessing=_preprocessing(args),
                name=args.name,
            )
        else:
            info = build_archive(
                args.weights,
                args.out,
                log,
                args.precision or DEFAULT_PRECISION,
                arch=args.arch or DEFAULT_ARCH,
                labels=args.labels,
                name=args.name,
            )
    except QuantizationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INT8_REFUSED
    except (
        OutputPathError,
        WeightsError,
        LabelsError,
        PackageError,
        PreprocessingError,
        OnnxImportError,
        ExportMismatchError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"{info.path} {info.size} bytes version {info.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
