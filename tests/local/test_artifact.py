"""Which archive `python -m local` serves, and when it builds one (packager stubbed)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from artifact.package_exit import EXIT_INT8_REFUSED
from machine import artifact
from machine.artifact import ArtifactError, read_model_info, resolve_artifact


def write_archive(path: Path, weights: str, version: str = "v1") -> None:
    meta = json.dumps({"name": "mobilenet_v2", "version": version, "weights": weights}).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("metadata.json")
        info.size = len(meta)
        archive.addfile(info, io.BytesIO(meta))


class Packager:
    """Stands in for `python -m model.package`; fails for the weights in `unavailable`."""

    def __init__(self, unavailable: tuple[str, ...] = ()):
        self.unavailable = unavailable
        self.calls: list[str] = []

    def __call__(self, weights: str, out: Path, say, *, fallback: bool = False) -> bool:
        self.calls.append(weights)
        if weights in self.unavailable:
            return False
        write_archive(out, "IMAGENET1K_V2" if weights == "imagenet" else weights)
        return True


@pytest.fixture
def packager(monkeypatch):
    stub = Packager(unavailable=("imagenet",))
    monkeypatch.setattr(artifact, "build_archive", stub)
    return stub


def test_metadata_is_read_from_the_archive(tmp_path):
    path = tmp_path / "model.tar.gz"
    write_archive(path, "random", "abc")
    info = read_model_info(path)
    assert (info.name, info.version, info.weights, info.untrained) == (
        "mobilenet_v2",
        "abc",
        "random",
        True,
    )


def test_not_an_archive_is_a_clear_error(tmp_path):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"junk")
    with pytest.raises(ArtifactError, match="not a model archive") as raised:
        read_model_info(path)
    assert str(raised.value) == f"{path} is not a model archive (not a gzip file)", "said once"


def test_an_archive_whose_metadata_is_not_json(tmp_path):
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("metadata.json")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"{x]"))
    with pytest.raises(ArtifactError) as raised:
        read_model_info(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: metadata.json is not JSON (")
    assert message.count(str(path)) == 1


def test_first_run_offline_falls_back_to_random_loudly(tmp_path, packager):
    said: list[str] = []
    info = resolve_artifact(None, None, said.append, out=tmp_path / "model.tar.gz")
    assert packager.calls == ["imagenet", "random"]
    assert info.untrained
    assert any("RANDOM, UNTRAINED" in line for line in said)


def test_an_existing_archive_is_reused(tmp_path, packager):
    out = tmp_path / "model.tar.gz"
    write_archive(out, "IMAGENET1K_V2")
    assert resolve_artifact(None, None, print, out=out).weights == "IMAGENET1K_V2"
    assert resolve_artifact(None, "imagenet", print, out=out).weights == "IMAGENET1K_V2"
    assert packager.calls == []


def test_other_weights_rebuild(tmp_path, packager):
    out = tmp_path / "model.tar.gz"
    write_archive(out, "IMAGENET1K_V2")
    assert resolve_artifact(None, "random", print, out=out).weights == "random"
    assert packager.calls == ["random"]


def test_explicit_weights_never_fall_back(tmp_path, packager):
    with pytest.raises(ArtifactError, match="--weights imagenet"):
        resolve_artifact(None, "imagenet", print, out=tmp_path / "model.tar.gz")
    assert packager.calls == ["imagenet"]


def test_a_corrupt_archive_is_rebuilt(tmp_path, packager):
    out = tmp_path / "model.tar.gz"
    out.write_bytes(b"interrupted build")
    said: list[str] = []
    assert resolve_artifact(None, "random", said.append, out=out).weights == "random"
    assert "building it again" in said[0]


def test_a_given_artifact_is_used_as_is(tmp_path, packager):
    given = tmp_path / "mine.tar.gz"
    write_archive(given, "file:0123456789ab")
    assert resolve_artifact(given, None, print, out=tmp_path / "x.tar.gz").path == given
    assert packager.calls == []


def test_a_refused_int8_build_falls_back_to_fp32(tmp_path, monkeypatch):
    commands: list[list[str]] = []

    def run(command, **_kwargs):
        commands.append(command)
        status = EXIT_INT8_REFUSED if "--precision" not in command else 0
        return subprocess.CompletedProcess(command, status)

    monkeypatch.setattr(artifact.subprocess, "run", run)
    said: list[str] = []
    assert artifact.build_archive("imagenet", tmp_path / "model.tar.gz", said.append)
    assert [command[-2:] for command in commands][1] == ["--precision", "fp32"]
    assert len(commands) == 2
    assert any("building fp32 instead" in line for line in said)


def test_other_build_failures_are_not_retried(tmp_path, monkeypatch):
    commands: list[list[str]] = []

    def run(command, **_kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 2)

    monkeypatch.setattr(artifact.subprocess, "run", run)
    assert not artifact.build_archive("imagenet", tmp_path / "model.tar.gz", print)
    assert len(commands) == 1


def test_the_packagers_errors_say_whose_flags_they_name(tmp_path, monkeypatch, capsys):
    """`python -m local --weights` with a fine-tuned state_dict: model.package asks for
    --labels, which local has not; its line says it is model.package's, and local says
    how to serve such weights."""
    refusal = (
        "error: --weights my weights.pt: its classifier has 3 outputs, so it needs your own "
        "class names: pass --labels with 3 labels, one per line\n"
    )

    def run(command, **kwargs):
        assert kwargs["stderr"] == subprocess.PIPE
        return subprocess.CompletedProcess(command, 2, stderr=refusal)

    monkeypatch.setattr(artifact.subprocess, "run", run)
    with pytest.raises(ArtifactError) as raised:
        resolve_artifact(None, "my weights.pt", print, out=tmp_path / "model.tar.gz")
    assert capsys.readouterr().err == f"model.package: {refusal}"
    message = str(raised.value)
    assert "\n" not in message
    assert (
        "python -m model.package --weights 'my weights.pt' --labels labels.txt --out "
        "build/mine.tar.gz; then --artifact build/mine.tar.gz"
    ) in message


def test_the_expected_imagenet_fallback_reads_as_a_note(tmp_path, monkeypatch, capsys):
    """`make run` offline: the default build's failure to download is expected (the random
    fallback follows), so the packager's line is a note, not an error."""
    offline = (
        "error: --weights imagenet needs to download IMAGENET1K_V2 from download.pytorch.org, "
        "which is unreachable; pass a local state_dict file (--weights PATH) or --weights random\n"
    )

    def run(command, **_kwargs):
        if "imagenet" in command:
            return subprocess.CompletedProcess(command, 2, stderr=offline)
        write_archive(Path(command[command.index("--out") + 1]), "random")
        return subprocess.CompletedProcess(command, 0, stderr="")

    monkeypatch.setattr(artifact.subprocess, "run", run)
    info = resolve_artifact(None, None, print, out=tmp_path / "model.tar.gz")
    assert info.untrained
    err = capsys.readouterr().err
    assert err == "model.package: note: " + offline.removeprefix("error: ")
