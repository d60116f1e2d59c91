"""`python -m local` as a user runs it: flags, a busy port, a missing artifact."""

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from artifact.labels import CUSTOM_LABEL_SET, IMAGENET_LABEL_SET
from artifact.metadata import ArchiveMetadata, ArchiveMetadataError, read_archive_metadata
from local.cli import parse_args, untrained_banner
from tests.conftest import ROOT


def run_local(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_defaults():
    args = parse_args([])
    assert (args.port, args.api_port, args.host) == (8000, 8001, "127.0.0.1")
    assert args.artifact is None
    assert args.weights is None
    assert args.api_keys is None, "API keys are off unless asked for"


def test_the_sites_port_keeps_its_old_name_too():
    assert parse_args(["--site-port", "9000"]).port == 9000


@pytest.mark.parametrize(
    ("argv", "file"),
    [
        (["--api-keys"], Path("build/api-keys.json")),
        (["--api-keys", "keys.json"], Path("keys.json")),
        (["--api-keys", "--port", "9000"], Path("build/api-keys.json")),
    ],
)
def test_api_keys_default_to_the_key_tools_file(argv, file):
    """`python -m admin.api_keys --local` documents build/api-keys.json as the convention."""
    assert parse_args(argv).api_keys == file


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "9000", "--api-port", "9000"],
        ["--site-port", "9000", "--api-port", "9000"],
        ["--artifact", "a", "--weights", "random"],
    ],
)
def test_contradictory_flags_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2


def test_a_port_in_use_is_explained_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_local("--api-port", str(port), "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "--api-port" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_artifact_is_explained_in_one_line(tmp_path):
    missing = tmp_path / "nope.tar.gz"
    result = run_local("--artifact", str(missing), "--port", "0", "--api-port", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == f"local: --artifact {missing}: no such file"


def test_a_setting_the_proxy_refuses_is_explained_in_one_line_before_anything_starts(tmp_path):
    missing = tmp_path / "nope.tar.gz"  # never reached: the setting is checked first
    result = run_local(
        "--artifact", str(missing), "--port", "0", "--api-port", "0", "--api-keys",
        str(tmp_path / "keys.json"),
        env={"API_KEYS_CACHE_SECONDS": "300"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "local: API_KEYS_CACHE_SECONDS='300' must be between 1.0 and 30.0"
    )


def test_a_key_file_that_is_not_one_is_explained_in_one_line(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text("[]")
    result = run_local("--api-keys", str(keys), "--port", "0", "--api-port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"local: {keys} is not an API key file")


def test_the_records_are_kept_in_build_local_data_by_default():
    assert parse_args([]).data_dir == ROOT / "build" / "local-data"
    assert parse_args(["--data-dir", "elsewhere"]).data_dir == Path("elsewhere")


def test_a_data_dir_that_cannot_hold_the_records_is_explained_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_local("--data-dir", str(blocker), "--port", "0", "--api-port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"local: --data-dir {blocker}: cannot open")


def archive_info(labels: tuple[str, ...], label_set: str):
    """A random-weights archive's metadata, its `label_set` as `model.package` records it."""
    return ArchiveMetadata(
        Path("mine.tar.gz"), "mine", "v1", "random", labels=labels, label_set=label_set
    )


@pytest.mark.parametrize("given", [True, False], ids=["--artifact", "built"])
def test_the_untrained_banner_fits_an_archive_of_own_classes(given):
    """A random 3-class archive: `--weights` excludes `--artifact`, and `--weights
    imagenet` would discard the user's classes; the way to a real one is fine-tuning."""
    own = archive_info(("cat", "coffee", "rocket"), CUSTOM_LABEL_SET)
    banner = untrained_banner(own, given_artifact=given)
    assert "UNTRAINED MODEL" in banner
    assert "imagenet" not in banner.replace("pretrained ImageNet backbone", "")
    assert "--weights PATH" not in banner
    assert "python -m model.finetune" in banner
    assert "python -m model.package" in banner
    assert "--artifact build/mine.tar.gz" in banner


def test_the_untrained_banner_of_a_given_imagenet_archive_builds_another():
    imagenet = archive_info(tuple(f"class {index}" for index in range(1000)), IMAGENET_LABEL_SET)
    banner = untrained_banner(imagenet, given_artifact=True)
    assert "python -m model.package --weights imagenet" in banner
    assert "--artifact" in banner
    assert "or --weights PATH" not in banner, "--weights excludes --artifact"
    built = untrained_banner(imagenet, given_artifact=False)
    assert "--weights imagenet (needs internet once)" in built


def test_an_archive_from_before_label_set_was_recorded_is_imagenets(tmp_path):
    """`metadata.json` without `label_set` (older archives answer with ImageNet's classes):
    the banner's advice is ImageNet's, read without torch."""
    archive = write_metadata_only(tmp_path / "old.tar.gz", {})
    assert read_archive_metadata(archive).label_set == IMAGENET_LABEL_SET
    assert "--weights imagenet" in untrained_banner(read_archive_metadata(archive), True)


def test_a_label_set_of_no_known_kind_is_refused(tmp_path):
    archive = write_metadata_only(tmp_path / "odd.tar.gz", {"label_set": "mine"})
    with pytest.raises(ArchiveMetadataError, match="label_set is not one of imagenet, custom"):
        read_archive_metadata(archive)


def write_metadata_only(path: Path, extra: dict) -> Path:
    meta = {"name": "m", "version": "v1", "weights": "random", "labels": ["a", "b"], **extra}
    data = json.dumps(meta).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_help_names_the_default_archive_by_its_path():
    result = run_local("--help")
    assert result.returncode == 0
    assert "instead of build/model.tar.gz" in " ".join(result.stdout.split())
