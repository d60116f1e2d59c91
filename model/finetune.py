"""Fine-tune a torchvision classifier on a folder of your own photos, on the CPU.

    python -m model.finetune --data DIR --out build/finetuned/weights.pt
                             [--arch mobilenet_v2] [--backbone imagenet|random]
                             [--epochs 5] [--unfreeze 0] [--val-fraction 0.2] [--seed 0]
                             [--batch-size 16] [--lr 0.001] [--workers 0]

DIR holds one folder per class, as torchvision's ``ImageFolder`` reads it
(``DIR/cat/1.jpg``, ``DIR/dog/2.png``...); the folder names, sorted, are the labels. It
trains a new classifier head (and with ``--unfreeze N`` the last N blocks before it) on
top of the architecture's pretrained ImageNet backbone, holds out a seeded, per-class
share of the photos to measure accuracy on, and writes ``weights.pt`` (a state_dict),
``labels.txt`` and ``weights.pt.json`` (the backbone it started from: a model trained on
a random one is packaged as untrained) beside it, ready for::

    python -m model.package --arch ARCH --weights weights.pt --labels labels.txt

Exit status: 0 done; 2 unusable arguments or data (fewer than 2 classes, a class without
readable images; unreadable files are skipped and counted, not fatal); 3 training
diverged (the loss became NaN or infinite: lower --lr).
"""

from __future__ import annotations

import argparse
import importlib
import math
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from artifact.metadata import DEFAULT_ARCH, IMAGENET, RANDOM
from artifact.output import OutputPathError
from model.stopping import run_stoppable

EXIT_DATA = 2
EXIT_DIVERGED = 3
LABELS_FILE = "labels.txt"
TRAINING_API = (
    "DataError",
    "DivergedError",
    "EpochStats",
    "FinetuneResult",
    "Photos",
    "blocks",
    "finetune",
    "load_photos",
    "recalibrate_batch_norm",
)
"""The Python API (docs/contracts.md), from `model.training`: torch loads on first use."""


@dataclass(frozen=True)
class Training:
    """How to train: the command line's --epochs, --unfreeze, ... (its defaults too)."""

    epochs: int = 5
    unfreeze: int = 0
    """Also train the last N blocks before the head (0: the head only)."""
    val_fraction: float = 0.2
    seed: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    """The head's learning rate; unfrozen blocks get `BACKBONE_LR_SHARE` of it."""
    workers: int = 0


def __getattr__(name: str) -> object:
    if name in TRAINING_API:
        return getattr(importlib.import_module("model.training"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction from 0 up to (not) 1")
    return value


def _whole(text: str, least: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1, "a whole number of at least 1")


def _count(text: str) -> int:
    return _whole(text, 0, "a whole number of 0 or more")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="one folder of photos per class")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"the state_dict to write (e.g. build/finetuned/weights.pt); {LABELS_FILE} and "
        "OUT.json (the backbone it started from) are written beside it",
    )
    parser.add_argument("--arch", default=DEFAULT_ARCH, help=f"default {DEFAULT_ARCH}")
    parser.add_argument(
        "--backbone",
        choices=(IMAGENET, RANDOM),
        default=IMAGENET,
        help="start from the pretrained ImageNet backbone (default; random, with a warning, "
        "when it cannot be had) or from random weights",
    )
    defaults = Training()
    parser.add_argument("--epochs", type=_positive, default=defaults.epochs)
    parser.add_argument(
        "--unfreeze",
        type=_count,
        default=defaults.unfreeze,
        help=f"also train the last N blocks before the head (default {defaults.unfreeze}: "
        "the head only)",
    )
    parser.add_argument(
        "--val-fraction",
        type=_fraction,
        default=defaults.val_fraction,
        help="share of each class's photos held out to measure accuracy "
        f"(default {defaults.val_fraction})",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="the split, order and head init"
    )
    parser.add_argument("--batch-size", type=_positive, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="the head's learning rate")
    parser.add_argument(
        "--workers", type=_count, default=defaults.workers, help="data loading processes"
    )
    args = parser.parse_args(argv)
    return run_stoppable("model.finetune", lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(message, flush=True)

    # Torch loads here, once Ctrl-C is handled (its import alone takes seconds).
    from model.training import DataError, DivergedError, finetune
    from model.weights import WeightsError, backbone_record

    try:
        result = finetune(
            args.data,
            args.out,
            arch=args.arch,
            backbone=args.backbone,
            training=Training(
                epochs=args.epochs,
                unfreeze=args.unfreeze,
                val_fraction=args.val_fraction,
                seed=args.seed,
                batch_size=args.batch_size,
                lr=args.lr,
                workers=args.workers,
            ),
            log=log,
        )
    except (OutputPathError, DataError, WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATA
    except DivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    log(
        f"wrote {result.weights}, {result.labels} and {backbone_record(result.weights)} "
        f"({len(result.classes)} classes, backbone {result.backbone})"
    )
    log(
        f"next: python -m model.package --arch {shlex.quote(args.arch)} "
        f"--weights {shlex.quote(str(result.weights))} "
        f"--labels {shlex.quote(str(result.labels))} --out build/model.tar.gz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
