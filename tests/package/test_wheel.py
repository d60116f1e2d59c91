"""The `image-classifier` wheel as a user gets it: built offline from a copy of this
checkout, installed in a virtualenv of its own (its dependencies and pytest only), and used
from folders outside the checkout.

- It holds the packages the program imports and the bundle of what the stack deploys;
  no tests, docs or benchmarks.
- `examples/classifier-program`, copied out of the repository, passes its own test under
  Pulumi's mocks against the installed wheel.
- The installed components deploy exactly what the checkout's do: the same serving image
  tag (so an unchanged image is never rebuilt), the same Lambda zips, the same site files.
- The wheel's console script is a component provider serving the same schema, with the
  wheel's version.

The virtualenv is made once per set of dependencies (`build/package-venv-<hash>`) and the
wheel reinstalled into it on every run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from components.batch_pipeline import batch_code
from components.deployables import BUNDLED, BUNDLED_FOLDERS
from components.deployables import CHECKOUT as CHECKOUT_ROOT
from components.proxy_api import lambda_code
from components.static_site import site_files
from image_classifier.provider import PACKAGE
from serving.image import image_tag
from tests.package.provider_schema import clean_env, provider_schema

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "classifier-program"
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "node_modules", "__pycache__", "*.egg-info", ".*_cache"
)
PACKAGES = {
    "image_classifier",
    "components",
    "hosting",
    "artifact",
    "serving",
    "pipeline",
    "shared",
}
INSTALL_SECONDS = 1800

DEPLOYED = """
import hashlib, json
from components.batch_pipeline import batch_code
from components.deployables import LAMBDA_PACKAGES_DIR, PROXY_DIR, ROOT, SERVING_CONTEXT, SITE_DIR
from components.proxy_api import lambda_code
from components.static_site import site_files
from serving.image import image_tag

def digests(archive):
    return {
        member: hashlib.sha256(open(asset.path, "rb").read()).hexdigest()
        for member, asset in archive.assets.items()
    }

print(json.dumps({
    "root": str(ROOT),
    "image_tag": image_tag(SERVING_CONTEXT),
    "proxy_zip": digests(lambda_code(PROXY_DIR)),
    "batch_zip": digests(batch_code(LAMBDA_PACKAGES_DIR)),
    "site": [path.as_posix() for path in site_files(SITE_DIR)],
}))
"""
"""What the installed components deploy, printed by the venv's Python."""


def _digests(archive: Any) -> dict[str, str]:
    return {
        member: hashlib.sha256(Path(asset.path).read_bytes()).hexdigest()
        for member, asset in archive.assets.items()
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built as `pip wheel` builds it, offline, from a copy of the checkout's sources (the
    build writes its own folders beside them)."""
    source = tmp_path_factory.mktemp("source") / "image-classifier"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--wheel-dir", str(out), str(source)),
        ],
        check=True,
        capture_output=True,
        timeout=INSTALL_SECONDS,
    )
    (built,) = out.glob("*.whl")
    return built


def _dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], "pytest"]


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _cached_venv() -> Path:
    """A virtualenv with the wheel's dependencies and pytest: nothing of this checkout."""
    requirements = _dependencies()
    key = json.dumps([list(sys.version_info[:2]), requirements]).encode()
    venv = ROOT / "build" / f"package-venv-{hashlib.sha256(key).hexdigest()[:16]}"
    if _python_of(venv).exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=venv.parent, prefix=".package-venv-"))
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(scratch)], check=True)
    subprocess.run(
        [_python_of(scratch), "-m", "pip", "install", "--quiet", *requirements],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    try:
        # Run with `python -m` only: its scripts' first lines name the scratch folder.
        scratch.rename(venv)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(scratch)
    return venv


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Path:
    venv = _cached_venv()
    python = _python_of(venv)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", str(wheel)],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    # The wheel's declared dependencies are what its code needs.
    subprocess.run([python, "-m", "pip", "check"], check=True, capture_output=True)
    return venv


def test_the_wheel_holds_the_programs_packages_and_the_bundle_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == PACKAGES | {f"image_classifier-{_version()}.dist-info"}
    bundled = {name.removeprefix("components/bundle/") for name in names if "/bundle/" in name}
    expected = set(BUNDLED) - set(BUNDLED_FOLDERS)
    for folder in BUNDLED_FOLDERS:
        expected |= {
            path.relative_to(CHECKOUT_ROOT).as_posix()
            for path in (CHECKOUT_ROOT / folder).rglob("*")
            if path.is_file()
            and "__pycache__" not in path.parts
            and path.suffix != ".pyc"
            and not path.name.startswith(".")
        }
    assert bundled == expected


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_example_passes_under_mocks_from_outside_the_checkout(venv, tmp_path):
    example = tmp_path / "classifier-program"
    shutil.copytree(EXAMPLE, example, ignore=NOT_SOURCES)
    run = subprocess.run(
        [
            *(_python_of(venv), "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-W", "ignore::DeprecationWarning"),
        ],
        cwd=example,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_the_installed_components_deploy_what_the_checkouts_do(venv, tmp_path):
    run = subprocess.run(
        [_python_of(venv), "-c", DEPLOYED],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=INSTALL_SECONDS,
    )
    installed = json.loads(run.stdout)
    assert Path(installed["root"]).is_relative_to(venv), "the bundle, not the checkout"
    assert installed["image_tag"] == image_tag(CHECKOUT_ROOT)
    assert installed["proxy_zip"] == _digests(lambda_code(CHECKOUT_ROOT / "proxy"))
    assert installed["batch_zip"] == _digests(batch_code(CHECKOUT_ROOT))
    assert installed["site"] == [path.as_posix() for path in site_files(CHECKOUT_ROOT / "site")]


def test_the_wheels_console_script_is_the_component_provider(venv, tmp_path):
    installed = provider_schema(
        [venv / "bin" / f"pulumi-resource-{PACKAGE}"],
        cwd=tmp_path,
        env=clean_env(),
        log=tmp_path / "provider.log",
    )
    checkout = provider_schema(
        [sys.executable, ROOT / "pulumi-plugin"],
        cwd=tmp_path,
        env=clean_env() | {"PYTHONPATH": str(ROOT)},
        log=tmp_path / "checkout-provider.log",
    )
    assert installed["version"] == _version()
    assert installed["resources"] == checkout["resources"]
    assert installed["types"] == checkout["types"]


def test_nothing_of_the_checkout_is_on_the_venvs_path(venv, tmp_path):
    run = subprocess.run(
        [_python_of(venv), "-c", "import sys; print('\\n'.join(sys.path))"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    entries = [Path(entry) for entry in run.stdout.splitlines() if entry]
    # The cached venv is under the checkout's build/; nothing else of the checkout is.
    assert [entry for entry in entries if entry.is_relative_to(ROOT)] == [
        entry for entry in entries if entry.is_relative_to(venv)
    ]
    assert any(entry.is_relative_to(venv) for entry in entries)
