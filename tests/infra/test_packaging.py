"""What the components package and how they name things, without Pulumi running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pulumi
import pytest

from components.proxy_api import HANDLER, labels_files, lambda_code
from components.stack_config import name_prefix
from components.static_site import content_type, site_files
from hosting.content_security_policy import content_security_policy
from tests.infra.conftest import ROOT


def _package(tmp_path):
    """A proxy package, and beside it the `shared/` package every Lambda zip carries."""
    (tmp_path / "shared" / "__pycache__").mkdir(parents=True)
    (tmp_path / "shared" / "__init__.py").write_text("")
    (tmp_path / "shared" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"\0")
    source = tmp_path / "proxy"
    (source / "__pycache__").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "handler.py").write_text("def handler(event, context): ...\n")
    (source / "sub").mkdir()
    (source / "sub" / "part.py").write_text("")
    (source / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\0")
    (source / "stray.pyc").write_bytes(b"\0")
    return source


def test_lambda_zip_holds_the_package_and_shared_without_bytecode(tmp_path):
    archive = lambda_code(_package(tmp_path))
    assert isinstance(archive, pulumi.AssetArchive)
    assert sorted(archive.assets) == [
        "proxy/__init__.py",
        "proxy/handler.py",
        "proxy/sub/part.py",
        "shared/__init__.py",
    ]
    assert archive.assets["proxy/handler.py"].path == str(tmp_path / "proxy" / "handler.py")
    assert archive.assets["shared/__init__.py"].path == str(tmp_path / "shared" / "__init__.py")


def test_lambda_zip_needs_shared_beside_the_package(tmp_path):
    source = _package(tmp_path)
    (tmp_path / "shared" / "__init__.py").unlink()
    with pytest.raises(FileNotFoundError, match=r"shared/__init__\.py"):
        lambda_code(source)


def test_lambda_zip_takes_generated_files_beside_the_package(tmp_path):
    labels = labels_files({"0123abcd4567": ["cat", "chat"], "fedcba987654": ["dog"]})
    archive = lambda_code(_package(tmp_path), labels)
    assert sorted(archive.assets) == [
        "model_labels/0123abcd4567.json",
        "model_labels/fedcba987654.json",
        "proxy/__init__.py",
        "proxy/handler.py",
        "proxy/sub/part.py",
        "shared/__init__.py",
    ]
    assert json.loads(archive.assets["model_labels/0123abcd4567.json"].text) == ["cat", "chat"]


@pytest.mark.parametrize(
    "member", ["proxy/labels.json", "shared/x.json", "/etc/passwd", "../up.json", "a//b"]
)
def test_generated_files_stay_out_of_the_packages_and_the_zip_root(tmp_path, member):
    with pytest.raises(ValueError, match="generated files go beside the proxy and shared packages"):
        lambda_code(_package(tmp_path), {member: pulumi.StringAsset("{}")})


@pytest.mark.parametrize("version", ["", "a/b", ".hidden"])
def test_a_version_that_cannot_name_a_file_is_refused(version):
    with pytest.raises(ValueError, match="cannot name a file"):
        labels_files({version: ["cat"]})


def test_lambda_zip_needs_a_handler(tmp_path):
    (tmp_path / "proxy").mkdir()
    with pytest.raises(FileNotFoundError, match=r"handler\.py"):
        lambda_code(tmp_path / "proxy")


def test_site_files_skip_generated_hidden_and_cache_files(tmp_path):
    site = tmp_path / ".checkout" / "site"  # a hidden folder above the site is fine
    for name in ("index.html", "app.js", "config.js", ".DS_Store", "img/logo.svg"):
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert [p.as_posix() for p in site_files(site)] == ["app.js", "img/logo.svg", "index.html"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("styles.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("site.webmanifest", "application/manifest+json"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
def test_content_types(tmp_path, name, expected):
    assert content_type(tmp_path / name) == expected


def test_csp_allows_only_the_given_connect_source():
    csp = content_security_policy("'self'")
    assert "connect-src 'self';" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


def test_name_prefix_fits_aws_names():
    assert name_prefix("image-classifier", "dev") == "image-classifier-dev"
    prefix = name_prefix("image-classifier", "Feature_Branch.With.A.Very.Long.Name.Indeed")
    assert len(prefix) <= 40
    assert prefix == prefix.lower()
    assert set(prefix) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert not prefix.endswith("-")


def test_the_lambda_zip_runs_the_handler_string_from_the_zip_alone(tmp_path):
    """Lambda puts the zip's root on sys.path and imports `proxy.handler`: do the same, in a
    fresh interpreter that cannot see the repository."""
    archive = lambda_code(ROOT / "proxy")
    bundle = tmp_path / "function.zip"
    with zipfile.ZipFile(bundle, "w") as zipped:
        for member, asset in sorted(archive.assets.items()):
            zipped.write(asset.path, member)
    module, function = HANDLER.rsplit(".", 1)
    script = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
        f"m = importlib.import_module({module!r}); "
        f"assert callable(getattr(m, {function!r})); print(m.__file__)"
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "SAGEMAKER_ENDPOINT_NAME": "image-classifier-test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, str(bundle)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(bundle))
