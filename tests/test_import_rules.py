"""Which package may import which: the rules of docs/architecture.md, enforced on what an
import really loads.

Each package runs in its own environment: the Pulumi program in a light virtualenv
(requirements.txt), the API Lambda's zip is `proxy/` alone and the batch Lambda's `proxy/`
and `pipeline/`, the serving image has no torch, the local runtime and the batch CLI run
on one machine without the infrastructure code. So a rule names, per package, the
third-party distributions (by top-level name) and the project packages it may load, and
it is checked transitively: from every file of the package, every project module it
imports is followed (imports at module level and in functions, `from pkg import name`
where `pkg.name` is a module, each parent package's `__init__`), and everything reached
must be allowed. Only `if TYPE_CHECKING:` imports are left out: they never load.

Besides: the packages import one another without cycles, product code never imports
`tests`, and no product module changes the environment when it is imported.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = "__main__"
"""The Pulumi program, `__main__.py` at the root: a package of its own here."""
NOT_PRODUCT = frozenset({"tests", "build", "node_modules", "site", "docs"})
"""Top-level folders that hold no product code (`site/` is the web UI: no Python)."""
SCRIPT_DIRS = frozenset({ROOT / "policy", ROOT / "pulumi-plugin"})
"""Folders run with themselves on `sys.path` (the CLI runs the policy pack's
`__main__.py` so): their modules import one another by bare name (`from rules import`)."""

PULUMI = frozenset({"pulumi", "pulumi_aws", "pulumi_docker_build", "pulumi_random"})
AWS = frozenset({"boto3", "botocore"})
SERVING = frozenset({"numpy", "onnxruntime", "PIL", "sagemaker_inference", "starlette", "uvicorn"})
TORCH = frozenset(
    {"torch", "torchvision", "onnx", "onnxruntime", "numpy", "PIL", "sklearn", "skimage"}
)
ANY = None
"""Every third-party distribution: the benchmarks run in the development virtualenv."""


@dataclass(frozen=True)
class Rule:
    third_party: frozenset[str] | None
    """Top-level names of the distributions it may load; `ANY`: every one."""
    packages: frozenset[str]
    """The project packages it may load besides itself."""


def _rules() -> dict[str, Rule]:
    components = Rule(PULUMI | AWS, frozenset({"hosting", "artifact", "pipeline", "serving"}))
    program = components.packages | {"components", "image_classifier"}
    rules = {
        # Standard library only: read in every environment.
        "shared": Rule(frozenset(), frozenset()),
        "hosting": Rule(frozenset(), frozenset()),
        "artifact": Rule(frozenset(), frozenset()),
        # The API Lambda's zip is `proxy/` and `shared/`; Lambda's Python runtime holds
        # boto3 beside it.
        "proxy": Rule(AWS, frozenset()),
        # The batch Lambdas' zip: `proxy/`, `pipeline/` and `shared/`.
        "pipeline": Rule(AWS, frozenset({"proxy"})),
        # The serving image (`python -m serving.serve`, the archive's handler): no torch,
        # no boto3.
        "serving": Rule(SERVING, frozenset({"artifact"})),
        # The torch side: packaging and fine-tuning.
        "model": Rule(TORCH, frozenset({"artifact"})),
        # What one machine uses in place of the cloud, for the local runtime, the batch CLI
        # and the operator CLIs: neither torch (the archive is built in a child process)
        # nor the serving libraries (the model server is one too).
        "machine": Rule(AWS, frozenset({"proxy", "artifact"})),
        # Operator CLIs, run from `.venv` or `.venv-pulumi`.
        "admin": Rule(AWS, frozenset({"proxy", "machine", "artifact"})),
        # The batch CLI on one machine.
        "batch": Rule(AWS, frozenset({"proxy", "pipeline", "machine", "artifact"})),
        # The local runtime: the proxy behind an HTTP API stand-in, the model server in a
        # child process, the site; never the infrastructure code.
        "local": Rule(
            frozenset({"starlette", "uvicorn"}) | AWS,
            frozenset({"hosting", "proxy", "pipeline", "batch", "machine", "artifact", "serving"}),
        ),
        # The Pulumi program's components, in its light virtualenv (requirements.txt); of
        # `serving`, `artifact` and `pipeline` only what they really load.
        "components": components,
        # The program: the components' public package and what it loads.
        PROGRAM: Rule(components.third_party, program),
        # The wheel's public package and the component provider it serves.
        "image_classifier": Rule(components.third_party, program - {"image_classifier"}),
        # Users of the wheel, as any program of a user's: the plugin that the engine runs
        # and the example program with its mock test (`USERS_OF_THE_WHEEL`).
        "pulumi-plugin": Rule(components.third_party, program),
        "examples": Rule(components.third_party | {"pytest"}, program),
        # The CrossGuard pack, in its own virtualenv (policy/requirements.txt).
        "policy": Rule(frozenset({"pulumi_policy"}), frozenset()),
        # Benchmarks: any of the product's packages, never the tests.
        "bench": Rule(
            ANY,
            frozenset(
                {
                    "admin",
                    "artifact",
                    "batch",
                    "components",
                    "hosting",
                    "local",
                    "machine",
                    "model",
                    "pipeline",
                    "proxy",
                    "serving",
                }
            ),
        ),
    }
    # Every side may load `shared/` but the serving image, which carries `artifact/` and
    # `serving/` alone (and so does not `shared/`).
    return {
        name: rule
        if name in {"shared", "artifact", "serving"}
        else Rule(rule.third_party, rule.packages | {"shared"})
        for name, rule in rules.items()
    }


RULES = _rules()


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    package: str
    """Its top-level package (`PROGRAM` for `__main__.py`)."""
    script_dir: bool
    """In one of `SCRIPT_DIRS`."""


def _modules() -> dict[str, Module]:
    found = {PROGRAM: Module(PROGRAM, ROOT / "__main__.py", PROGRAM, False)}
    for top in sorted(ROOT.iterdir()):
        if not top.is_dir() or top.name in NOT_PRODUCT or top.name.startswith("."):
            continue
        for path in sorted(top.rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = Module(name, path, top.name, path.parent in SCRIPT_DIRS)
    return found


MODULES = _modules()
PACKAGES = frozenset(module.package for module in MODULES.values())


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: all but those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                yield from _import_nodes(child)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_nodes(node)


def _resolve(module: Module, name: str) -> str:
    """`name` as the interpreter finds it from `module`: a sibling in a script folder
    wins over a top-level package."""
    if module.script_dir:
        sibling = ".".join([*module.name.split(".")[:-1], name])
        if sibling.split(".")[0] == module.package and sibling in MODULES:
            return sibling
    return name


@cache
def imports(name: str) -> tuple[str, ...]:
    """What module `name` imports when it runs: project modules by their dotted names
    (with each parent package, whose `__init__` loads first) and other top-level names."""
    module = MODULES[name]
    found: list[str] = []
    for node in _import_nodes(ast.parse(module.path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [_resolve(module, alias.name) for alias in node.names]
        else:
            assert node.level == 0, f"{module.path}:{node.lineno}: imports relatively"
            source = _resolve(module, node.module or "")
            # `from pkg import name` loads `pkg.name` too where that is a module.
            targets = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        for target in targets:
            parts = target.split(".")
            # The module first: a broken rule is reported by the module that breaks it.
            for end in range(len(parts), 0, -1):
                prefix = ".".join(parts[:end])
                if prefix in MODULES or end == 1:
                    found.append(prefix)
    return tuple(dict.fromkeys(found))


def _is_project(name: str) -> bool:
    return name in MODULES or name.split(".")[0] in PACKAGES


def reached(start: str) -> dict[str, list[str]]:
    """Every module and top-level name loading `start` loads, each with the chain of
    project modules that leads to it."""
    chains: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop()
        for target in imports(current):
            if target in chains:
                continue
            chains[target] = [*chains[current], target]
            if target in MODULES:
                queue.append(target)
    return chains


def _third_party(name: str) -> bool:
    top = name.split(".")[0]
    return not _is_project(name) and top not in sys.stdlib_module_names


def violations(package: str) -> dict[str, str]:
    """What `package` loads against its rule (a project package or a third-party top-level
    name), each with the first chain of imports found to lead there."""
    rule = RULES[package]
    found: dict[str, str] = {}
    for name in sorted(m.name for m in MODULES.values() if m.package == package):
        for target, chain in reached(name).items():
            if target in MODULES:
                key = MODULES[target].package
                allowed = key == package or key in rule.packages
            elif _third_party(target):
                key = target.split(".")[0]
                allowed = rule.third_party is ANY or key in rule.third_party
            else:
                continue  # the standard library, or a name in a project module
            if not allowed:
                found.setdefault(key, " -> ".join(chain))
    return found


def test_every_package_has_a_rule():
    assert set(RULES) == PACKAGES, "give each package a rule (and only those that exist)"


@pytest.mark.parametrize("package", sorted(RULES))
def test_each_package_loads_only_what_its_environment_has(package):
    found = violations(package)
    assert not found, f"{package} loads what its rule does not allow:\n" + "\n".join(
        f"{key}: {chain}" for key, chain in sorted(found.items())
    )


def package_graph() -> dict[str, set[str]]:
    """Package -> the project packages its modules import directly."""
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for module in MODULES.values():
        for target in imports(module.name):
            if target in MODULES and MODULES[target].package != module.package:
                graph[module.package].add(MODULES[target].package)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The elementary cycles of `graph`, each from its smallest package (Johnson's
    algorithm would be faster; a dozen packages need no speed)."""
    found: list[list[str]] = []

    def walk(start: str, path: list[str]) -> None:
        for following in sorted(graph[path[-1]]):
            if following == start:
                found.append([*path, start])
            elif following > start and following not in path:
                walk(start, [*path, following])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_the_packages_import_one_another_without_cycles():
    found = cycles(package_graph())
    assert not found, "cycles between packages:\n" + "\n".join(" -> ".join(c) for c in found)


def test_product_code_never_imports_the_tests():
    found = [
        f"{module.name} imports {target}"
        for module in MODULES.values()
        for target in imports(module.name)
        if target.split(".")[0] == "tests"
    ]
    assert not found, "\n".join(found)


def _changes_environ(node: ast.AST) -> bool:
    """`os.environ[...] = ...`, `del os.environ[...]`, `os.environ.update(...)` and the
    like, `os.putenv`, `os.unsetenv`."""
    if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        return any(
            isinstance(target, ast.Subscript) and _is_environ(target.value) for target in targets
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner, method = node.func.value, node.func.attr
        mutators = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__"}
        if _is_environ(owner) and method in mutators:
            return True
        return isinstance(owner, ast.Name) and owner.id == "os" and method in {"putenv", "unsetenv"}
    return False


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _run_at_import(tree: ast.Module) -> Iterator[ast.AST]:
    """The nodes a module runs when it is imported: all but the bodies of functions
    (classes' bodies do run) and of `if __name__ == "__main__":`."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and _is_main_guard(node):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(
            isinstance(value, ast.Constant) and value.value == "__main__"
            for value in test.comparators
        )
    )


@pytest.mark.parametrize(
    ("source", "changes"),
    [
        ('import os\nos.environ["A"] = "1"', True),
        ('import os\nos.environ.setdefault("A", "1")', True),
        ('import os\nif True:\n    os.environ.update(A="1")', True),
        ('import os\nos.putenv("A", "1")', True),
        ('import os\ndel os.environ["A"]', True),
        ('from os import environ\nclass C:\n    environ.pop("A")', True),
        ('import os\ndef f():\n    os.environ["A"] = "1"', False),
        ('import os\nif __name__ == "__main__":\n    os.environ["A"] = "1"', False),
        ('import os\nA = os.environ.get("A")', False),
    ],
)
def test_a_change_of_the_environment_at_import_is_found(source, changes):
    assert any(_changes_environ(node) for node in _run_at_import(ast.parse(source))) is changes


def test_no_product_module_changes_the_environment_when_imported():
    found = [
        f"{module.path.relative_to(ROOT)}:{node.lineno}"
        for module in MODULES.values()
        for node in _run_at_import(ast.parse(module.path.read_text(encoding="utf-8")))
        if _changes_environ(node)
    ]
    assert not found, "os.environ changed at import:\n" + "\n".join(found)


USERS_OF_THE_WHEEL = (PROGRAM, "pulumi-plugin", "examples")


@pytest.mark.parametrize("package", USERS_OF_THE_WHEEL)
def test_the_wheels_users_import_only_its_public_package(package):
    """They see the components as any program of a user's would: through `image_classifier`."""
    found = [
        f"{module.name} imports {target}"
        for module in MODULES.values()
        if module.package == package
        for target in imports(module.name)
        if _is_project(target)
        and MODULES.get(target, module).package not in {package}
        and target.split(".")[0] != "image_classifier"
    ]
    assert not found, "\n".join(found)
