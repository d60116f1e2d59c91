"""The memory an archive records (`peak_rss_mb`, `memory_mb_min`) and how the stack reads
it. The model part of the bound is checked against `serving.serve` for every architecture
in test_architectures.py; here, the headroom for the largest image the handler accepts,
and the metadata reader."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from artifact.archive import write_reproducible_tar_gz
from artifact.metadata import ArchiveMetadataError, read_archive_metadata
from model.memory import MAX_IMAGE_PIXELS, MIB, REQUEST_BYTES_PER_PIXEL, estimate
from tests.serving.conftest import tiny_onnx_model

ROOT = Path(__file__).resolve().parents[2]


def archive_with(tmp_path: Path, **fields: object) -> Path:
    metadata = {"name": "m", "version": "v1", "weights": "random", **fields}
    out = tmp_path / "model.tar.gz"
    write_reproducible_tar_gz({"metadata.json": json.dumps(metadata).encode()}, out)
    return out


def test_the_stack_reads_memory_mb_min(tmp_path):
    assert read_archive_metadata(archive_with(tmp_path, memory_mb_min=2048)).memory_mb_min == 2048


def test_archives_from_before_it_have_none(tmp_path):
    assert read_archive_metadata(archive_with(tmp_path)).memory_mb_min is None


@pytest.mark.parametrize("value", ["2048", 2048.5, True])
def test_a_memory_that_is_not_a_whole_number_is_refused(tmp_path, value):
    with pytest.raises(ArchiveMetadataError, match="memory_mb_min"):
        read_archive_metadata(archive_with(tmp_path, memory_mb_min=value))


def test_the_estimate_rounds_up_to_serverless_steps():
    model = tiny_onnx_model().SerializeToString()
    memory = estimate(model, 224)
    assert memory.peak_rss_mb > memory.model_mb
    assert memory.memory_mb_min == 1024
    assert estimate(model, 224) == memory, "deterministic: the archive stays reproducible"


@pytest.mark.slow
@pytest.mark.parametrize("image_format", ["WEBP", "PNG"])
def test_the_largest_accepted_image_fits_the_headroom(tmp_path, tiny_model_dir, image_format):
    """A small file declaring the largest size the handler accepts (a lossless RGBA
    WebP is the worst case: 17 bytes per pixel) stays within the recorded headroom."""
    side = int(MAX_IMAGE_PIXELS**0.5)
    buffer = io.BytesIO()
    Image.new("RGBA", (side, side), (20, 200, 30, 128)).save(buffer, image_format, lossless=True)
    body = tmp_path / "large"
    body.write_bytes(buffer.getvalue())
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from serving.serve import LoadedHandler

        def peak():
            status = Path("/proc/self/status").read_text().splitlines()
            return int(next(s for s in status if s.startswith("VmHWM:")).split()[1]) * 1024

        handler = LoadedHandler(Path({str(tiny_model_dir)!r}))
        body = Path({str(body)!r}).read_bytes()
        before = peak()
        image = handler.module.input_fn(body, "application/octet-stream")
        assert handler.module.predict_fn(image, handler.model)["predictions"]
        print(peak() - before)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    grown = int(result.stdout) / MIB
    assert grown <= REQUEST_BYTES_PER_PIXEL * MAX_IMAGE_PIXELS / MIB, f"{grown:.0f} MiB"
