"""`serving.image`: the serving image's tag follows exactly what goes into the image.

No container engine needed: these read the Dockerfile, .dockerignore and the lock file.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from serving import image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of just the image's context files."""
    for name in image.CONTEXT_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_tag_is_a_stable_hex_digest(repo):
    tag = image.image_tag(repo)
    assert re.fullmatch(r"[0-9a-f]{16}", tag)
    assert image.image_tag(repo) == tag == image.image_tag(ROOT)


@pytest.mark.parametrize("name", image.CONTEXT_FILES)
def test_any_context_file_changes_the_tag(repo, name):
    before = image.image_tag(repo)
    with (repo / name).open("a") as file:
        file.write("\n")
    assert image.image_tag(repo) != before


def test_the_base_image_changes_the_tag(repo):
    default = image.default_base_image(repo)
    assert image.image_tag(repo) == image.image_tag(repo, default)
    assert image.image_tag(repo, "localhost/serving-base:bookworm") != image.image_tag(repo)


def test_file_modes_do_not_change_the_tag(repo):
    """Only bytes are hashed: a checkout made with umask 002 names the same image as one
    made with 022 (pulumi-docker-build's own context hash sees the modes and rebuilds,
    which is why the repository's tags may move: decision 12)."""
    before = image.image_tag(repo)
    for name in image.CONTEXT_FILES:
        (repo / name).chmod(0o664)
    (repo / image.DOCKERFILE).chmod(0o775)
    assert image.image_tag(repo) == before


def test_files_outside_the_image_do_not_change_the_tag(repo):
    before = image.image_tag(repo)
    (repo / "README.md").write_text("docs")
    (repo / "model").mkdir()
    (repo / "model" / "package.py").write_text("import torch\n")
    assert image.image_tag(repo) == before


def test_the_default_base_is_pinned_python_3_11_on_ecr_public():
    base = image.default_base_image(ROOT)
    assert re.fullmatch(r"public\.ecr\.aws/docker/library/python:3\.11\.\d+-slim-bookworm", base)


def _dockerfile_copy_sources() -> set[str]:
    sources = set()
    for line in (ROOT / image.DOCKERFILE).read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not words[1].startswith("--from="):
            sources.update(words[1:-1])
    return sources


def _dockerignore_includes() -> set[str]:
    lines = (ROOT / image.DOCKERIGNORE).read_text().splitlines()
    assert [line for line in lines if line and not line.startswith(("#", "!"))] == ["*"]
    return {line[1:] for line in lines if line.startswith("!")}


def test_the_hashed_files_are_exactly_what_the_build_reads():
    copied = _dockerfile_copy_sources()
    assert copied == set(image.CONTEXT_FILES) - {image.DOCKERFILE, image.DOCKERIGNORE}
    assert _dockerignore_includes() == copied


def test_the_image_holds_every_module_of_ours_the_server_imports():
    wanted, seen = {"serving/serve.py"}, set()
    while wanted - seen:
        name = (wanted - seen).pop()
        seen.add(name)
        for node in ast.walk(ast.parse((ROOT / name).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("model."):
                wanted.add(node.module.replace(".", "/") + ".py")
    assert seen <= set(image.SERVING_CODE)


def test_the_lock_pins_every_serving_requirement_by_hash():
    lock = (ROOT / image.LOCK_FILE).read_text()
    pins = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.MULTILINE)
    }
    wanted = [
        Requirement(line)
        for path in ("serving/code/requirements.txt", "serving/requirements-serve.txt")
        for line in (ROOT / path).read_text().splitlines()
        if line and not line.startswith(("#", "-r"))
    ]
    assert len(wanted) == 5
    for requirement in wanted:
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)])
    assert "torch" not in pins
    # Every pin is followed by its hashes, so pip's --require-hashes accepts the file.
    assert lock.count("==") == len(pins)
    assert len(re.findall(r"==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", lock)) == len(pins)
    # The header says how to regenerate it.
    command = lock.splitlines()[1].lstrip("# ")
    assert command.startswith("uv pip compile serving/requirements-serve.txt --python-version 3.11")


def test_the_tag_module_needs_only_the_standard_library():
    tree = ast.parse((ROOT / "serving" / "image.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names)


def test_the_cli_prints_the_tag(capsys):
    assert image.main(["--base-image", "localhost/base:1"]) == 0
    assert capsys.readouterr().out.strip() == image.image_tag(ROOT, "localhost/base:1")
