"""Tests use public APIs only: libraries' and our own modules' (DEVELOPERS.md).

Every module under `tests/`, and every code string a test hands a child interpreter, is
read with `ast`. A private use is:

- an import of a module or name with a leading underscore (`from x._y import z`,
  `from x import _z`), whoever owns it;
- an import of a third-party submodule or name that its package leaves out of what it
  declares it offers, when it declares that: its `__all__`, plus the submodules its
  `__init__.py` imports by name (`from torch import nn`). So `pulumi_policy.proxy`,
  `pulumi.dynamic.dynamic` and `pulumi.runtime.proto` are private. The standard
  library's API is its documentation, not its `__all__` (`collections.abc`), so only the
  underscore rule applies to it;
- an attribute with a leading underscore on anything but the code's own `self` or `cls`
  (a module's `_GLOBAL`, another object's `_attr`), written out or as a string
  (`getattr`, `setattr`, `monkeypatch.setattr`, `mock.patch`).

The one module allowed such uses is `tests/policy_sdk_adapter.py`, whose docstring says
why no public way exists and what would replace it.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
ADAPTER = TESTS / "policy_sdk_adapter.py"
EXEMPT = (ADAPTER, Path(__file__).resolve())
"""The adapter, and this module, whose examples of private uses are on purpose."""
OWN = frozenset(
    path.stem if path.suffix == ".py" else path.name
    for path in ROOT.iterdir()
    if path.suffix == ".py" or (path.is_dir() and any(path.glob("*.py")))
)
"""This repository's top-level packages and modules."""
PUBLIC_UNDERSCORED = frozenset(
    {"_asdict", "_fields", "_field_defaults", "_make", "_replace", "_exit"}
)
"""Documented names with a leading underscore: `collections.namedtuple`'s methods (clear of
its fields) and `os._exit`."""
NAMED_BY_STRING = frozenset({"getattr", "setattr", "delattr", "hasattr", "patch", "object"})
"""Calls whose string argument names an attribute (`monkeypatch.setattr`, `mock.patch`,
`mock.patch.object`)."""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _exported(package: Path, name: str) -> frozenset[str] | None:
    """What a package declares it offers: the names in its `__init__.py`'s literal
    `__all__`, and the submodules that module imports by name itself (`from torch import
    nn`); None when it declares no `__all__` (then it says nothing, and nothing is past it)."""
    init = package / "__init__.py"
    if not init.is_file():
        return None
    declared: frozenset[str] | None = None
    imported: set[str] = set()
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
                try:
                    declared = frozenset(ast.literal_eval(node.value))
                except ValueError:
                    return None
        elif isinstance(node, ast.ImportFrom) and (
            node.module is None or node.module == name  # `from . import x`, `from pkg import x`
        ):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {
                alias.name.removeprefix(f"{name}.").split(".")[0]
                for alias in node.names
                if alias.name.startswith(f"{name}.")
            }
    return None if declared is None else declared | imported


def _unexported(module: str) -> str | None:
    """Why `module` (or a name at its end) is past its third-party package's API: the first
    step on its path that the package it is in leaves out of the `__all__` it declares.
    Read from disk: nothing is imported."""
    top, *rest = module.split(".")
    if top in OWN or top in sys.stdlib_module_names or not rest:
        return None
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    for depth, part in enumerate(rest, start=1):
        exported = _exported(package, ".".join([top, *rest[: depth - 1]]))
        if exported is not None and part not in exported:
            return f"{'.'.join([top, *rest[:depth]])} is not in its package's __all__"
        package = package / part
        if not package.is_dir():
            return None
    return None


def _named_by_string(call: ast.Call) -> str | None:
    """The private name a `getattr`-like call or a `patch` target names by string."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name not in NAMED_BY_STRING:
        return None
    for argument in call.args[:2]:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            for part in argument.value.split("."):
                if _private(part) and part not in PUBLIC_UNDERSCORED:
                    return argument.value
    return None


def _code_strings(tree: ast.AST) -> Iterator[tuple[int, ast.Module]]:
    """Code a test runs in a child interpreter (`python -c`): string constants that parse
    as a module with an import in it."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "import" in node.value
        ):
            try:
                code = ast.parse(node.value)
            except SyntaxError:
                continue
            if any(isinstance(inner, ast.Import | ast.ImportFrom) for inner in ast.walk(code)):
                yield node.lineno, code


def _uses(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(_private(part) for part in alias.name.split(".")):
                    yield node.lineno, f"import {alias.name}"
                elif unexported := _unexported(alias.name):
                    yield node.lineno, f"import {alias.name} ({unexported})"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [alias.name for alias in node.names]
            if any(_private(part) for part in [*node.module.split("."), *names]):
                yield node.lineno, f"from {node.module} import {', '.join(names)}"
            else:
                for name in names:
                    if unexported := _unexported(f"{node.module}.{name}"):
                        yield node.lineno, f"from {node.module} import {name} ({unexported})"
        elif isinstance(node, ast.Attribute):
            owner = node.value
            own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if _private(node.attr) and node.attr not in PUBLIC_UNDERSCORED and not own:
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Call) and (named := _named_by_string(node)):
            yield node.lineno, f"{ast.unparse(node.func)}(..., {named!r}, ...)"


def private_uses(source: str) -> list[tuple[int, str]]:
    """Each private use in `source` and in the code strings it holds, by line."""
    tree = ast.parse(source)
    found = set(_uses(tree))
    for line, code in _code_strings(tree):
        found |= {(line, f"in code run as a string: {what}") for _, what in _uses(code)}
    return sorted(found)


def test_tests_use_public_apis_only():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sorted(TESTS.rglob("*.py"))
        if path not in EXEMPT
        for line, what in private_uses(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "private names outside tests/policy_sdk_adapter.py:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "from pulumi_policy.proxy import unknown_checking_proxy",
        "from pulumi_policy import proxy",
        "from pulumi.dynamic.dynamic import serialize_provider",
        "import pulumi.runtime.proto",
        "import pulumi_policy.deserialize as deserialize",
        "from _pytest.monkeypatch import MonkeyPatch",
        "from proxy.variants import _NAME",
        "import proxy.handler as h\nh._PROXY.handle({}, None)",
        "def test(module):\n    module.PROXY.access._keys",
        "def test(monkeypatch, weights):\n    monkeypatch.setattr(weights, '_reachable', None)",
        "def test(mocker):\n    mocker.patch('model.weights._reachable')",
        "def test(store):\n    return getattr(store, '_session')",
        "CODE = 'import proxy.handler as h\\nh._PROXY'",
    ],
)
def test_the_scan_finds_each_kind_of_private_use(source):
    assert private_uses(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from pulumi_policy import StackValidationPolicy",
        "import pulumi.dynamic",
        "from pulumi.runtime import set_mocks",
        "from collections.abc import Mapping",
        "from botocore.stub import Stubber",
        "from torch import nn",
        "from torch.utils.data import DataLoader",
        "from google.protobuf import struct_pb2",
        "from moto import mock_aws",
        "os._exit(0)",
        "class A:\n    def f(self):\n        return self._x",
        "point._replace(x=1)",
        "from batch.__main__ import main",
        "monkeypatch.setattr(handler, 'RuntimeClients', None)",
    ],
)
def test_the_scan_lets_public_uses_be(source):
    assert private_uses(source) == [], source
