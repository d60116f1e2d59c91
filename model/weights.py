"""Which MobileNetV2 weights go into the archive: torchvision's pretrained ImageNet
weights, a local state_dict, or a seeded random initialisation for offline work."""

from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import MobileNet_V2_Weights

from model.metadata import IMAGENET, RANDOM

REFERENCE = MobileNet_V2_Weights.IMAGENET1K_V2
NETWORK_PROBE_SECONDS = 3.0


class WeightsError(RuntimeError):
    """The requested weights cannot be used; the message says what to do instead."""


@dataclass(frozen=True)
class Network:
    module: torch.nn.Module
    weights_id: str  # as `model.metadata.ArchiveMetadata.weights` records it


def load_network(spec: str) -> Network:
    """Build MobileNetV2 in eval mode for ``imagenet``, ``random`` or a state_dict path."""
    if spec == IMAGENET:
        _require_download_or_cache()
        try:
            module = torchvision.models.mobilenet_v2(weights=REFERENCE)
        except (URLError, OSError, RuntimeError) as error:
            raise WeightsError(
                f"--weights imagenet: downloading {REFERENCE.name} failed ({error}); pass a "
                "local state_dict file (--weights PATH) or --weights random"
            ) from error
        return Network(module.eval(), REFERENCE.name)
    if spec == RANDOM:
        # A fixed seed keeps "random" archives byte-reproducible.
        torch.manual_seed(0)
        return Network(torchvision.models.mobilenet_v2(weights=None).eval(), RANDOM)
    return _from_file(Path(spec))


def preprocessing() -> dict[str, object]:
    """The reference transforms of IMAGENET1K_V2, which every weights option shares."""
    transforms = REFERENCE.transforms()
    return {
        "resize_size": transforms.resize_size[0],
        "crop_size": transforms.crop_size[0],
        "interpolation": transforms.interpolation.value,
        "mean": list(transforms.mean),
        "std": list(transforms.std),
    }


def reference_preprocess(image: Image.Image) -> np.ndarray:
    """A photo as the [1,3,H,W] network input, by torchvision's reference transforms
    (which the handler's Pillow/NumPy preprocessing matches pixel for pixel)."""
    return REFERENCE.transforms()(image.convert("RGB")).numpy()[np.newaxis]


def labels() -> list[str]:
    return list(REFERENCE.meta["categories"])


def _from_file(path: Path) -> Network:
    if not path.is_file():
        raise WeightsError(
            f"--weights {path}: no such file; pass 'imagenet', 'random' or a state_dict file"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"--weights {path}: not a PyTorch state_dict ({error})") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    module = torchvision.models.mobilenet_v2(weights=None)
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise WeightsError(
            f"--weights {path}: not a MobileNetV2 ImageNet state_dict ({first_line})"
        ) from error
    return Network(module.eval(), f"file:{digest[:12]}")


def _require_download_or_cache() -> None:
    """Fail in seconds, not after a long hang, when the weights cannot be fetched."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(REFERENCE.url).path).name
    if cached.is_file():
        return
    host = urlparse(REFERENCE.url).hostname or "download.pytorch.org"
    if not _reachable(host, 443):
        raise WeightsError(
            f"--weights imagenet needs to download {REFERENCE.name} from {host}, which is "
            "unreachable: pass a local state_dict file (--weights PATH) or --weights random"
        )


def _reachable(host: str, port: int) -> bool:
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
