"""Which network goes into the archive: a torchvision classification architecture, by
name from torchvision's own model registry, with its pretrained ImageNet weights, a local
state_dict (a fine-tuned head of any size included), or a seeded random initialisation
for offline work."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import get_model, get_model_weights, list_models

from artifact.metadata import DEFAULT_ARCH, IMAGENET, RANDOM
from model.preprocessing import Preprocessing

TESTED_ARCHS = (
    "mobilenet_v2",
    "mobilenet_v3_large",
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "convnext_tiny",
)
"""Architectures the test suite packages, checks and serves; any other name of the
registry builds through the same checks."""
NETWORK_PROBE_SECONDS = 3.0
PACKAGE_ADVICE = "; pass a local state_dict file (--weights PATH) or --weights random"
"""What `python -m model.package` can do instead of downloading pretrained weights."""
# Every DEFAULT weights of the registry is an ImageNet-1k classifier (the same categories,
# `model.labels.imagenet_labels()`): a head of any other size is a fine-tuned one.
IMAGENET_CLASSES = 1000


BACKBONE_SUFFIX = ".json"
"""`model.finetune` writes `weights.pt.json` beside `weights.pt`: the backbone it started
from, and the weights file's sha256, so a file replaced since is not taken for it."""


class WeightsError(RuntimeError):
    """The requested weights cannot be used; the message says what to do instead."""


@dataclass(frozen=True)
class Network:
    module: torch.nn.Module
    weights_id: str  # as `artifact.metadata.ArchiveMetadata.weights` records it
    num_classes: int


def architectures() -> list[str]:
    """Every classification model in torchvision's registry (sorted names)."""
    return list_models(module=torchvision.models)


def check_arch(arch: str) -> None:
    if arch not in architectures():
        raise WeightsError(
            f"--arch {arch}: not a torchvision classification model; choose one of "
            f"{', '.join(architectures())}"
        )


def default_weights(arch: str) -> torchvision.models.WeightsEnum:
    """The architecture's recommended pretrained weights (torchvision's DEFAULT)."""
    return get_model_weights(arch).DEFAULT


def preprocessing(arch: str) -> Preprocessing:
    """The reference transforms of the architecture's DEFAULT weights. Random and local
    weights use them too: a state_dict is fine-tuned from those weights, with their
    transforms (`model.finetune` does so)."""
    return Preprocessing.from_transforms(default_weights(arch).transforms())


def reference_preprocess(arch: str) -> Callable[[Image.Image], np.ndarray]:
    """A photo as the [1,3,H,W] network input, by the weights' own ``transforms()``
    (which the handler's Pillow/NumPy preprocessing matches pixel for pixel)."""
    transforms = default_weights(arch).transforms()
    return lambda image: transforms(image.convert("RGB")).numpy()[np.newaxis]


def head_parameters(arch: str) -> dict[str, int]:
    """The state_dict entries whose shape depends on the number of classes (the
    classifier head, and auxiliary heads where a network has them), each with the axis
    that counts classes. Found by building the network twice on the meta device (no
    memory, no initialisation cost) with 2 and 3 classes and comparing shapes, so it holds
    for every architecture of the registry without a table."""
    with torch.device("meta"):
        two, three = (get_model(arch, weights=None, num_classes=n).state_dict() for n in (2, 3))
    heads = {}
    for name, tensor in two.items():
        pairs = zip(tensor.shape, three[name].shape, strict=True)
        axes = [axis for axis, (a, b) in enumerate(pairs) if a != b]
        if axes:
            heads[name] = axes[0]
    return heads


def load_network(spec: str, arch: str = DEFAULT_ARCH, num_classes: int | None = None) -> Network:
    """The network in eval mode for ``imagenet``, ``random`` or a state_dict path.

    ``num_classes`` is the size of the classifier head wanted (the number of labels);
    None means "whatever the weights have" (1000 for ImageNet and random weights).
    """
    check_arch(arch)
    if spec == IMAGENET:
        return _pretrained(arch, num_classes)
    if spec == RANDOM:
        return random_network(arch, num_classes or IMAGENET_CLASSES)
    return _from_file(Path(spec), arch, num_classes)


def random_network(arch: str, num_classes: int) -> Network:
    # A fixed seed keeps "random" archives byte-reproducible.
    torch.manual_seed(0)
    module = get_model(arch, weights=None, num_classes=num_classes)
    return Network(module.eval(), RANDOM, num_classes)


def pretrained_backbone(arch: str, num_classes: int) -> Network:
    """The pretrained network with a fresh, seeded head of ``num_classes`` outputs: the
    starting point of fine-tuning. Raises `WeightsError` when the weights cannot be had
    (its message names fine-tuning's `--backbone`)."""
    pretrained = _pretrained(arch, None, flag="--backbone imagenet", advice="")
    torch.manual_seed(0)
    module = get_model(arch, weights=None, num_classes=num_classes)
    heads = head_parameters(arch)
    backbone = {k: v for k, v in pretrained.module.state_dict().items() if k not in heads}
    module.load_state_dict(backbone, strict=False)
    return Network(module.eval(), pretrained.weights_id, num_classes)


def _pretrained(
    arch: str,
    num_classes: int | None,
    flag: str = "--weights imagenet",
    advice: str = PACKAGE_ADVICE,
) -> Network:
    """``flag`` and ``advice`` are the caller's (the packager's by default): what asked for
    the weights, and what to do instead."""
    weights = default_weights(arch)
    if num_classes not in (None, IMAGENET_CLASSES):
        raise WeightsError(
            f"--weights imagenet: {weights.name} has {IMAGENET_CLASSES} ImageNet classes, not "
            f"{num_classes}; for classes of your own, fine-tune first (python -m "
            "model.finetune) and pass its weights file"
        )
    _require_download_or_cache(weights, flag, advice)
    try:
        module = get_model(arch, weights=weights)
    except (URLError, OSError, RuntimeError) as error:
        raise WeightsError(
            f"{flag}: downloading {arch} {weights.name} failed ({error}){advice}"
        ) from error
    return Network(module.eval(), weights.name, IMAGENET_CLASSES)


def _from_file(path: Path, arch: str, num_classes: int | None) -> Network:
    if not path.is_file():
        raise WeightsError(
            f"--weights {path}: no such file; pass 'imagenet', 'random' or a state_dict file"
        )
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise WeightsError(f"--weights {path}: cannot read it ({error.strerror})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types on files it cannot read
        raise WeightsError(
            f"--weights {path}: not a PyTorch state_dict ({_load_failure(error)}); save one "
            "with torch.save(model.state_dict(), PATH)"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"--weights {path}: not a PyTorch state_dict (a {type(state)})")
    outputs = _head_outputs(state, arch)
    if num_classes is None and outputs not in (None, IMAGENET_CLASSES):
        raise WeightsError(
            f"--weights {path}: its classifier has {outputs} outputs, so it needs your own "
            f"class names: pass --labels with {outputs} labels, one per line"
        )
    if num_classes is not None and outputs is not None and outputs != num_classes:
        raise WeightsError(
            f"--weights {path}: its classifier has {outputs} outputs but --labels has "
            f"{num_classes} labels; they must be the same (one label per output, in order)"
        )
    module = get_model(arch, weights=None, num_classes=outputs or IMAGENET_CLASSES)
    expected = module.state_dict().keys()
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise WeightsError(
            f"--weights {path}: not a {arch} state_dict ({_keys(missing, 'missing')}, "
            f"{_keys(unexpected, 'unexpected')}); pass --arch with the architecture it was "
            "trained as"
        )
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        detail = " ".join(str(error).split())
        raise WeightsError(f"--weights {path}: not a {arch} state_dict ({detail})") from error
    weights_id = RANDOM if _trained_from_random(path, digest) else f"file:{digest[:12]}"
    return Network(module.eval(), weights_id, outputs or IMAGENET_CLASSES)


def backbone_record(weights_file: Path) -> Path:
    """Where `model.finetune` records the backbone of ``weights_file``."""
    return weights_file.with_name(weights_file.name + BACKBONE_SUFFIX)


def backbone_record_bytes(backbone: str, weights_bytes: bytes) -> bytes:
    record = {"backbone": backbone, "sha256": hashlib.sha256(weights_bytes).hexdigest()}
    return (json.dumps(record, indent=1) + "\n").encode()


def _trained_from_random(path: Path, digest: str) -> bool:
    """Whether `model.finetune` recorded that it trained ``path`` on a random backbone:
    such a head learnt from untrained features, so the archive is labelled untrained."""
    try:
        record = json.loads(backbone_record(path).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == digest
        and record.get("backbone") == RANDOM
    )


def _load_failure(error: Exception) -> str:
    """torch.load's reason in one line: its weights-only refusals are paragraphs about
    PyTorch 2.6 around a line that names the cause (an unsupported object, a bad opcode)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "WeightsUnpickler error:" in str(error):
        marker = next(i for i, line in enumerate(lines) if "WeightsUnpickler error:" in line)
        cause = lines[marker].split("WeightsUnpickler error:", 1)[1].strip()
        lines = [cause] if cause else lines[marker + 1 : marker + 2]
    first = " ".join((lines or [type(error).__name__])[0].split())
    return first.split(". ", 1)[0].removesuffix(".")[:200]


def _keys(keys: list[str], kind: str) -> str:
    shown = f" such as {keys[0]!r}" if keys else ""
    return f"{len(keys)} {kind} entries{shown}"


def _head_outputs(state: dict[str, object], arch: str) -> int | None:
    """How many classes the state_dict's head has (None if it has no such head: then
    the strict load reports the mismatch)."""
    for name, axis in head_parameters(arch).items():
        tensor = state.get(name)
        if isinstance(tensor, torch.Tensor) and tensor.dim() > axis:
            return int(tensor.shape[axis])
    return None


def _require_download_or_cache(
    weights: torchvision.models.WeightsEnum, flag: str, advice: str
) -> None:
    """Fail in seconds, not after a long hang, when the weights cannot be fetched."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if cached.is_file():
        return
    host = urlparse(weights.url).hostname or "download.pytorch.org"
    if not reachable(host, 443):
        raise WeightsError(
            f"{flag} needs to download {weights.name} from {host}, which is unreachable{advice}"
        )


def reachable(host: str, port: int) -> bool:
    """Whether `host` accepts a TCP connection on `port` within `NETWORK_PROBE_SECONDS`:
    the check before a download, so that offline it fails in seconds, not after a hang."""
    # Name resolution has no timeout of its own, so the probe runs in a thread we stop
    # waiting for.
    reached = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=NETWORK_PROBE_SECONDS):
                reached.set()
        except OSError:
            return

    threading.Thread(target=probe, daemon=True).start()
    return reached.wait(NETWORK_PROBE_SECONDS)
