"""Build ``model.tar.gz`` for SageMaker: MobileNetV2 as ONNX plus the serving handler.

    python -m model.package --weights imagenet|random|PATH [--precision int8|fp32]
                            --out build/model.tar.gz

Same inputs, same bytes: the version in metadata.json is derived from the content.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CODE_DIR = Path(__file__).resolve().parent / "code"
CODE_FILES = ("inference.py", "requirements.txt")
MODEL_NAME = "mobilenet_v2"
# int8 by default: it is what meets the endpoint's latency target (docs/model.md,
# "Precision"; ADR 8); fp32 is the exact export, for when int8 fails its check or is not
# wanted.
PRECISIONS = ("int8", "fp32")
DEFAULT_PRECISION = "int8"
EXIT_INT8_REFUSED = 3
"""Exit status when the int8 model fails its agreement check (2: any other build error),
so a caller can fall back to `--precision fp32`."""


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    size: int
    version: str
    weights: str
    precision: str


def build_archive(
    weights: str,
    out: Path,
    log: Callable[[str], None] = lambda _message: None,
    precision: str = DEFAULT_PRECISION,
) -> ArchiveInfo:
    """Export, verify and package. Raises ``WeightsError``, ``ExportMismatchError`` (the
    fp32 export disagrees with torch, checked for every precision) or
    ``QuantizationError`` (the int8 model disagrees with the fp32 one)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    # Torch loads only here, so `python -m model.package --help` and serving stay fast.
    from model import export
    from model import weights as weights_mod
    from model.archive import write_reproducible_tar_gz

    out = Path(out)
    started = time.monotonic()
    log(f"loading MobileNetV2 weights: {weights}")
    network = weights_mod.load_network(weights)
    prep = weights_mod.preprocessing()
    crop_size = int(prep["crop_size"])
    log(f"exporting to ONNX (opset {export.OPSET}, dynamic batch)")
    onnx_model = export.export_onnx(network.module, crop_size)
    parity = export.check_parity(network.module, onnx_model, crop_size)
    log(
        f"ONNX Runtime matches torch: max |dp| = {parity.max_dp:.1e}, "
        f"max |dlogit| = {parity.max_dlogit:.1e}"
    )
    if precision == "int8":
        onnx_model = _int8(onnx_model, log)

    files = {"model.onnx": onnx_model}
    for name in CODE_FILES:
        files[f"code/{name}"] = (CODE_DIR / name).read_bytes()
    metadata = {
        "name": MODEL_NAME,
        "weights": network.weights_id,
        "precision": precision,
        "labels": weights_mod.labels(),
        "preprocessing": prep,
        "onnx": {"input": export.INPUT_NAME, "output": export.OUTPUT_NAME, "opset": export.OPSET},
    }
    version = content_version(files, metadata)
    files["metadata.json"] = _json_bytes({**metadata, "version": version})
    write_reproducible_tar_gz(files, out)
    info = ArchiveInfo(out, out.stat().st_size, version, network.weights_id, precision)
    log(
        f"wrote {out} ({info.size / 1e6:.1f} MB) version {version} weights {info.weights} "
        f"precision {precision}"
    )
    log(f"done in {time.monotonic() - started:.1f} s")
    return info


def _int8(fp32_model: bytes, log: Callable[[str], None]) -> bytes:
    """Quantize, then prove the int8 model still agrees with the verified fp32 one."""
    from model import quantize
    from model.weights import reference_preprocess

    int8_model = quantize.quantize_int8(fp32_model, reference_preprocess, log)
    agreement = quantize.verify_int8(fp32_model, int8_model, reference_preprocess)
    log(f"int8 agrees with fp32 on held-out photos: {agreement.summary()}")
    return int8_model


def content_version(files: dict[str, bytes], metadata: dict[str, object]) -> str:
    """Hash of every archive entry and of the metadata, before the version is added."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    digest.update(_json_bytes(metadata))
    return digest.hexdigest()[:12]


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.package", description=__doc__)
    parser.add_argument(
        "--weights",
        required=True,
        help="'imagenet' (torchvision IMAGENET1K_V2, downloaded), 'random' (untrained, "
        "offline) or the path of a MobileNetV2 state_dict",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="int8 (default): statically quantized, about twice as fast, checked against "
        "fp32 on held-out photos; fp32: the exact export",
    )
    parser.add_argument("--out", type=Path, default=Path("build/model.tar.gz"))
    args = parser.parse_args(argv)

    from model.export import ExportMismatchError
    from model.quantize import QuantizationError
    from model.weights import WeightsError

    try:
        info = build_archive(
            args.weights, args.out, log=lambda m: print(m, flush=True), precision=args.precision
        )
    except QuantizationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INT8_REFUSED
    except (WeightsError, ExportMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{info.path} {info.size} bytes version {info.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
