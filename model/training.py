"""Fine-tuning itself, the torch side of `python -m model.finetune` (which loads this
module only once its Ctrl-C handling is in place): photos, network, epochs, files."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import InterpolationMode

from artifact.labels import write_labels
from artifact.metadata import DEFAULT_ARCH, IMAGENET, RANDOM
from artifact.output import check_output_path, write_whole
from model.finetune import LABELS_FILE, Training
from model.preprocessing import Preprocessing
from model.weights import (
    Network,
    WeightsError,
    backbone_record,
    backbone_record_bytes,
    check_arch,
    head_parameters,
    preprocessing,
    pretrained_backbone,
    random_network,
)

DEFAULT_TRAINING = Training()
"""The command line's defaults."""
BACKBONE_LR_SHARE = 0.1
"""Unfrozen pretrained blocks learn at a tenth of the head's rate: they only need to
adapt, and a full rate would overwrite what they learnt on ImageNet."""
BATCH_NORM_SAMPLES = 256
"""Photos used to re-estimate a random backbone's batch-norm statistics."""
UNTRAINED_BACKBONE = """
======================================================================
  NO pretrained {arch} backbone: {reason}.
  Fine-tuning starts from RANDOM weights: only the head (and any
  --unfreeze blocks) learns, on features that were never trained. Expect
  poor accuracy. Run once with internet access (torchvision caches the
  weights) for a real classifier.
======================================================================
"""


class DataError(ValueError):
    """The data folder cannot be trained on; the message says why (exit status 2)."""


class DivergedError(RuntimeError):
    """The loss became NaN or infinite (exit status 3)."""


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass(frozen=True)
class Photos:
    dataset: ImageFolder
    train: list[int]
    val: list[int]
    unreadable: list[Path]


@dataclass
class FinetuneResult:
    weights: Path
    labels: Path
    classes: list[str]
    backbone: str
    """The weights id the backbone started from (`random` when no pretrained weights)."""
    unreadable: list[Path]
    history: list[EpochStats] = field(default_factory=list)


def load_photos(data: Path, val_fraction: float, seed: int, decode_side: int) -> Photos:
    """Read DIR as ``ImageFolder`` does, skipping (and counting) files with an image
    extension that do not decode, and split every class with a seeded shuffle."""
    if not data.is_dir():
        raise DataError(f"--data {data}: no such folder; give a folder with one folder per class")
    unreadable: list[Path] = []

    def readable(path: str) -> bool:
        if not path.lower().endswith(IMG_EXTENSIONS):
            return False  # not an image file at all (notes, .DS_Store): ImageFolder's rule
        try:
            load_rgb(path, decode_side)
        except Exception:  # any failure to decode a file is "unreadable"
            unreadable.append(Path(path))
            return False
        return True

    try:
        dataset = ImageFolder(
            str(data),
            loader=functools.partial(load_rgb, decode_side=decode_side),
            is_valid_file=readable,
            allow_empty=True,
        )
    except FileNotFoundError:
        raise DataError(
            f"--data {data}: it has no class folders; put each class's photos in a folder of "
            "its own (DIR/cat/..., DIR/dog/...)"
        ) from None
    if len(dataset.classes) < 2:
        raise DataError(
            f"--data {data}: {len(dataset.classes)} class folder(s) ({', '.join(dataset.classes)});"
            " a classifier needs at least 2"
        )
    per_class: list[list[int]] = [[] for _ in dataset.classes]
    for index, target in enumerate(dataset.targets):
        per_class[target].append(index)
    empty = [name for name, members in zip(dataset.classes, per_class, strict=True) if not members]
    if empty:
        raise DataError(
            f"--data {data}: class folder(s) {', '.join(empty)} hold no readable images "
            f"({', '.join(ext for ext in IMG_EXTENSIONS)})"
        )
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for members in per_class:
        shuffled = [members[i] for i in torch.randperm(len(members), generator=generator)]
        # Every class with two photos or more is measured, however small the fraction.
        held = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        held = held if val_fraction > 0 else 0
        val += shuffled[:held]
        train += shuffled[held:]
    return Photos(dataset, sorted(train), sorted(val), sorted(unreadable))


def load_rgb(path: str, decode_side: int) -> Image.Image:
    """A photo in RGB, as torchvision's loader gives it but upright by its EXIF
    orientation, as the handler turns it; big JPEGs decode at a reduced scale (still at
    least ``decode_side`` on the short side), which keeps epochs fast."""
    with Image.open(path) as image:
        image.draft("RGB", (decode_side, decode_side))
        image.load()
        upright = ImageOps.exif_transpose(image)
        return upright.convert("RGB")


class _Transformed(Dataset):
    """A subset of the photos with a transform of its own (training vs validation)."""

    def __init__(self, photos: Photos, indices: list[int], transform: Callable) -> None:
        self._subset = Subset(photos.dataset, indices)
        self._transform = transform

    def __len__(self) -> int:
        return len(self._subset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, target = self._subset[index]
        return self._transform(image), target


def blocks(module: nn.Module, head: set[str]) -> list[tuple[str, nn.Module]]:
    """The network's blocks before the head, in order: each top-level child with
    parameters, a top-level ``nn.Sequential`` (torchvision's ``features``, ResNet's
    ``layer4``) counting as its children. Generic over the registry: no table per
    architecture."""
    found = []
    for name, child in module.named_children():
        members = (
            [(f"{name}.{n}", c) for n, c in child.named_children()]
            if isinstance(child, nn.Sequential)
            else [(name, child)]
        )
        for member_name, member in members:
            names = {f"{member_name}.{p}" for p, _ in member.named_parameters()}
            if names and not names & head:
                found.append((member_name, member))
    return found


def recalibrate_batch_norm(network: nn.Module, loader: DataLoader) -> None:
    """Re-estimate batch-norm statistics on the photos. A random network's running
    statistics are its initial ones (mean 0, variance 1), which shrink activations layer
    after layer until the features are about 1e-9 (MobileNets, EfficientNets): no head
    can learn from that. Measured on the photos, the features are of order 1."""
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over every batch
    network.train()
    seen = 0
    with torch.no_grad():
        for batch, _targets in loader:
            network(batch)
            seen += len(batch)
            if seen >= BATCH_NORM_SAMPLES:
                break
    network.eval()


@dataclass(frozen=True)
class _Loaders:
    train: DataLoader
    val: DataLoader | None
    """None when nothing is held out."""
    calibrate: DataLoader
    """The training photos as validation sees them, to recalibrate batch norms."""


@dataclass(frozen=True)
class _Trainable:
    frozen: list[tuple[str, nn.Module]]
    """The blocks that keep their weights, and their batch norm statistics."""
    optimizer: torch.optim.Optimizer


def finetune(
    data: Path,
    out: Path,
    arch: str = DEFAULT_ARCH,
    backbone: str = IMAGENET,
    training: Training = DEFAULT_TRAINING,
    log: Callable[[str], None] = lambda _message: None,
) -> FinetuneResult:
    """Train and write ``out`` (the state_dict), ``labels.txt`` and the backbone record
    (`model.weights.backbone_record`) beside it. Raises `OutputPathError` (checked first),
    `DataError`, `WeightsError` (an unknown --arch) or `DivergedError`."""
    for path in (out, out.with_name(LABELS_FILE), backbone_record(out)):
        check_output_path(path)
    check_arch(arch)
    prep = preprocessing(arch)
    photos = load_photos(data, training.val_fraction, training.seed, 2 * prep.resize_size)
    classes = photos.dataset.classes
    log(
        f"{len(photos.dataset)} photos in {len(classes)} classes ({', '.join(classes)}): "
        f"{len(photos.train)} to train on, {len(photos.val)} held out"
    )
    if photos.unreadable:
        shown = ", ".join(str(path) for path in photos.unreadable[:3])
        more = f" and {len(photos.unreadable) - 3} more" if len(photos.unreadable) > 3 else ""
        log(f"skipped {len(photos.unreadable)} unreadable image file(s): {shown}{more}")

    torch.manual_seed(training.seed)
    network = _start(arch, backbone, len(classes), log)
    loaders = _loaders(photos, prep, training)
    module = network.module
    if network.weights_id == RANDOM:
        recalibrate_batch_norm(module, loaders.calibrate)
    trainable = _trainable(module, arch, training, log)
    result = FinetuneResult(
        weights=out,
        labels=out.with_name(LABELS_FILE),
        classes=list(classes),
        backbone=network.weights_id,
        unreadable=photos.unreadable,
    )
    for epoch in range(1, training.epochs + 1):
        result.history.append(_train_epoch(module, loaders, trainable, epoch, training, log))
    write_whole(out, functools.partial(torch.save, module.state_dict()))
    record = backbone_record_bytes(network.weights_id, out.read_bytes())
    write_whole(backbone_record(out), lambda file: file.write(record))
    write_labels(list(classes), result.labels)
    return result


def _loaders(photos: Photos, prep: Preprocessing, training: Training) -> _Loaders:
    """Validation sees exactly what serving sees (the weights' reference transforms);
    training sees random crops and mirror images of the same photos."""
    interpolation = InterpolationMode(prep.interpolation)
    normalize = [
        transforms.PILToTensor(),
        transforms.ConvertImageDtype(torch.float),
        transforms.Normalize(list(prep.mean), list(prep.std)),
    ]
    evaluate = transforms.Compose(
        [
            transforms.Resize(prep.resize_size, interpolation=interpolation, antialias=True),
            transforms.CenterCrop(prep.crop_size),
            *normalize,
        ]
    )
    augment = transforms.Compose(
        [
            transforms.RandomResizedCrop(prep.crop_size, interpolation=interpolation),
            transforms.RandomHorizontalFlip(),
            *normalize,
        ]
    )
    batch_size, workers = training.batch_size, training.workers
    return _Loaders(
        train=DataLoader(
            _Transformed(photos, photos.train, augment),
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(training.seed),
            num_workers=workers,
        ),
        val=DataLoader(
            _Transformed(photos, photos.val, evaluate), batch_size=batch_size, num_workers=workers
        )
        if photos.val
        else None,
        calibrate=DataLoader(
            _Transformed(photos, photos.train, evaluate),
            batch_size=batch_size,
            num_workers=workers,
        ),
    )


def _trainable(
    module: nn.Module, arch: str, training: Training, log: Callable[[str], None]
) -> _Trainable:
    """Freeze all but the head and the last `training.unfreeze` blocks; their optimizer."""
    head = set(head_parameters(arch))
    all_blocks = blocks(module, head)
    unfreeze = training.unfreeze
    unfrozen = all_blocks[max(0, len(all_blocks) - unfreeze) :] if unfreeze else []
    frozen = all_blocks[: len(all_blocks) - len(unfrozen)]
    head_params = [p for name, p in module.named_parameters() if name in head]
    block_params = [p for _name, block in unfrozen for p in block.parameters()]
    for parameter in module.parameters():
        parameter.requires_grad = False
    for parameter in (*head_params, *block_params):
        parameter.requires_grad = True
    trainable = sum(p.numel() for p in (*head_params, *block_params))
    log(
        f"training the head{f' and the last {len(unfrozen)} block(s)' if unfrozen else ''} "
        f"({', '.join(name for name, _ in unfrozen) or 'backbone frozen'}): "
        f"{trainable:,} of {sum(p.numel() for p in module.parameters()):,} parameters"
    )
    groups = [{"params": head_params, "lr": training.lr}]
    if block_params:
        groups.append({"params": block_params, "lr": training.lr * BACKBONE_LR_SHARE})
    return _Trainable(frozen, torch.optim.AdamW(groups, weight_decay=1e-4))


def _train_epoch(
    module: nn.Module,
    loaders: _Loaders,
    trainable: _Trainable,
    epoch: int,
    training: Training,
    log: Callable[[str], None],
) -> EpochStats:
    """One epoch of training, then one pass over the held-out photos (if any)."""
    started = time.monotonic()
    epochs = training.epochs
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _name, block in trainable.frozen:
        block.eval()  # frozen batch norms keep their statistics

    def progress(number: int, batches: int, loss: float) -> None:
        log(f"  epoch {epoch}/{epochs} batch {number}/{batches} loss {loss:.4f}")

    train_loss, train_accuracy = _run_epoch(
        module, loaders.train, loss_fn, trainable.optimizer, progress
    )
    module.eval()
    val_loss, val_accuracy = (
        _run_epoch(module, loaders.val, loss_fn) if loaders.val is not None else (None, None)
    )
    stats = EpochStats(
        epoch, train_loss, train_accuracy, val_loss, val_accuracy, time.monotonic() - started
    )
    held_out = (
        f"  val loss {val_loss:.4f} accuracy {val_accuracy:.3f}"
        if val_loss is not None and val_accuracy is not None
        else "  (nothing held out)"
    )
    log(
        f"epoch {epoch}/{epochs}  train loss {train_loss:.4f} accuracy "
        f"{train_accuracy:.3f}{held_out}  ({stats.seconds:.1f} s)"
    )
    return stats


def _start(arch: str, backbone: str, classes: int, log: Callable[[str], None]) -> Network:
    if backbone == IMAGENET:
        try:
            network = pretrained_backbone(arch, classes)
        except WeightsError as error:
            log(UNTRAINED_BACKBONE.format(arch=arch, reason=error))
        else:
            log(f"starting from {arch} {network.weights_id} with a new head of {classes} classes")
            return network
    else:
        log(UNTRAINED_BACKBONE.format(arch=arch, reason="--backbone random"))
    return random_network(arch, classes)


def _run_epoch(
    module: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[float, float]:
    """One pass: mean loss and accuracy; with an optimizer, a training pass."""
    total_loss, correct, seen = 0.0, 0, 0
    batches = len(loader)
    every = max(1, batches // 5)  # about five progress lines per epoch
    with torch.set_grad_enabled(optimizer is not None):
        for number, (batch, targets) in enumerate(loader, start=1):
            logits = module(batch)
            loss = loss_fn(logits, targets)
            if not math.isfinite(loss.item()):
                raise DivergedError(
                    f"the loss became {loss.item()} in batch {number}: lower --lr and try again"
                )
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if progress is not None and batches >= 10 and number % every == 0:
                    progress(number, batches, loss.item())
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(dim=1) == targets).sum())
            seen += len(batch)
    return total_loss / seen, correct / seen
