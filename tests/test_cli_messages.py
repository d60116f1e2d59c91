"""Every `--flag` a CLI's help or messages name exists in the parser of the CLI it names.

The rule:
- a command, `python -m X [SUBCOMMAND...] ... --flag`, or `X [SUBCOMMAND] --flag` with X
  a CLI's module name (`local --container`), or `make run ARGS="--flag"` (`python -m
  local`), anywhere in the sources' strings or in a help text, is checked
  against X's parser, its subcommands' flags included once the command names them;
- a bare `--flag` in the strings of a CLI's own modules (`MESSAGE_SOURCES`: the modules
  whose messages that CLI prints) or in its help must exist somewhere in that CLI's
  parsers (any of its subcommands);
- a string that is one token (`"--rm"`, `f"--out={path}"`) is an argument list's item or a
  flag's own name, not a message, and a flag of another program is named in
  `OTHER_PROGRAMS` with the string it appears in.

Parsers are taken from each CLI's `main` as it builds them (its `parse_args` is
intercepted), so the test sees exactly what a user's `--help` shows.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PRODUCT_PACKAGES, ROOT

CLIS = (
    "model.package",
    "model.finetune",
    "admin.registry",
    "serving.serve",
    "serving.image",
    "local",
    "batch",
    "admin.api_keys",
    "admin.report",
    "bench.batch",
    "bench.bulk",
    "bench.cold_start",
    "bench.inference",
    "bench.local_load",
    "bench.proxy",
    ".github/scripts/smoke_test.py",
)
"""Each CLI by its module (`python -m X`), or by its file for a script run by path."""
ENTRY = {"local": "local.cli", "batch": "batch.__main__"}
"""Where the `main` of a CLI that is a package is."""
# The modules whose messages (and docstrings, which are also help) each CLI shows.
MESSAGE_SOURCES = {
    "model.package": (
        "model/package.py",
        "model/weights.py",
        "artifact/labels.py",
        "model/preprocessing.py",
        "model/onnx_import.py",
        "model/quantize.py",
        "model/export.py",
        "artifact/metadata.py",
        "artifact/output.py",
        "model/stopping.py",
    ),
    "model.finetune": (
        "model/finetune.py",
        "model/training.py",
        "model/weights.py",
        "artifact/output.py",
        "model/stopping.py",
    ),
    "admin.registry": ("admin/registry.py",),
    "serving.serve": ("serving/serve.py",),
    "serving.image": ("serving/image.py",),
    "local": tuple(str(path.relative_to(ROOT)) for path in sorted(ROOT.glob("local/*.py"))),
    "batch": tuple(
        f"{name}.py"
        for name in (
            "batch/__main__",
            "batch/runner",
            "batch/review",
            "batch/export",
            "batch/labels",
            "batch/transform",
            "batch/transform_job",
            "batch/manifest",
            "batch/sorting",
            "batch/stack_outputs",
            "pipeline/storage",
            "pipeline/tasks",
        )
    ),
    "admin.api_keys": ("admin/api_keys.py", "proxy/api_keys.py", "machine/api_keys_file.py"),
    "admin.report": ("admin/report.py",),
    **{name: (f"{name.replace('.', '/')}.py",) for name in CLIS if name.startswith("bench.")},
    ".github/scripts/smoke_test.py": (".github/scripts/smoke_test.py",),
}
# Flags of programs other than ours, with a word of the string that shows whose they are.
OTHER_PROGRAMS = {
    "podman": {"--cgroup-manager", "--network", "--read-only", "--tmpfs", "--rm"},
    "buildx": {"--platform", "--provenance", "--output"},
}
NAMES = "|".join(re.escape(name) for name in CLIS if not name.endswith(".py"))
# A CLI named without `python -m` counts when a flag follows at once, or after one
# subcommand: `local --container`, `batch run --out`, not "in batch X: lower --lr".
COMMAND = re.compile(
    r"(?:(?<![\w-])-m\s+([A-Za-z_][\w.]*)"
    rf"|(?<![\w./-])({NAMES})(?=\s+(?:[a-z]+\s+)?--[A-Za-z])"
    r"""|make run ARGS=["']?)"""
)
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


@dataclass
class Cli:
    name: str
    parser: argparse.ArgumentParser
    subcommands: dict[str, Cli] = field(default_factory=dict)

    @property
    def flags(self) -> set[str]:
        """The option strings its help lists (each option's line starts with 2 spaces)."""
        found = set()
        for line in self.parser.format_help().splitlines():
            if line.startswith("  -"):
                found |= set(
                    re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", line.strip().split("  ")[0])
                )
        return found

    def all_flags(self) -> set[str]:
        return self.flags.union(*(sub.all_flags() for sub in self.subcommands.values()))

    def walk(self) -> Iterator[Cli]:
        yield self
        for sub in self.subcommands.values():
            yield from sub.walk()


def cli_of(module: str) -> Cli:
    """The parsers `module`'s main builds, subcommands included (the parse never runs)."""
    if module.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(module).stem, ROOT / module)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded  # its dataclasses look their module up there
        spec.loader.exec_module(loaded)
    else:
        loaded = importlib.import_module(ENTRY.get(module, module))
    main: Callable[..., object] = loaded.main
    children: dict[int, dict[str, argparse.ArgumentParser]] = {}
    add_subparsers = argparse.ArgumentParser.add_subparsers

    def recording_subparsers(self: argparse.ArgumentParser, **kwargs: object):
        action = add_subparsers(self, **kwargs)
        add_parser = action.add_parser

        def recording_add_parser(name: str, **options: object) -> argparse.ArgumentParser:
            child = add_parser(name, **options)
            children.setdefault(id(self), {})[name] = child
            return child

        action.add_parser = recording_add_parser
        return action

    def intercept(self: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        raise _Parsed(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "add_subparsers", recording_subparsers)
        patch.setattr(argparse.ArgumentParser, "parse_args", intercept)
        with pytest.raises(_Parsed) as parsed:
            main(*([[]] if inspect.signature(main).parameters else []))

    def tree(name: str, parser: argparse.ArgumentParser) -> Cli:
        subs = children.get(id(parser), {})
        return Cli(name, parser, {sub: tree(f"{name} {sub}", p) for sub, p in subs.items()})

    return tree(module, parsed.value.parser)


@pytest.fixture(scope="module")
def clis() -> dict[str, Cli]:
    return {name: cli_of(name) for name in CLIS}


def strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string literal of a source file, f-strings with `X` for each value."""
    tree = ast.parse(path.read_text(), str(path))
    inside_fstrings = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for value in node.values
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "X" for part in node.values
            )
            yield node.lineno, text
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in inside_fstrings
        ):
            yield node.lineno, node.value


def command_mentions(
    text: str, indented: bool = True
) -> Iterator[tuple[str, list[str], tuple[int, int]]]:
    """(CLI, the command's words after it, the span) for each command the text names.
    A command runs to the end of its line, and on after a line ending in `\\` (and, if
    ``indented``, over more indented lines, as in a usage block), up to the end of a
    sentence, a `;`, a quote or a pipe."""
    lines = text.split("\n")
    offset = 0
    for number, line in enumerate(lines):
        for match in COMMAND.finditer(line):
            cli = match.group(1) or match.group(2) or "local"
            rest = line[match.end() :]
            indent = len(line) - len(line.lstrip())
            for following in lines[number + 1 :]:
                deeper = len(following) - len(following.lstrip()) > indent
                escaped = rest.rstrip().endswith("\\")
                if not following.strip() or not (escaped or (indented and deeper)):
                    break
                rest = rest.rstrip().removesuffix("\\") + " " + following.strip()
            rest = rest[: command_end(rest)]
            start = offset + match.start()
            yield cli, rest.split(), (start, start + len(match.group(0)) + len(rest))
        offset += len(line) + 1


def command_end(rest: str) -> int:
    """Where a command ends: at a `;`, a quote, a shell pipe or `&&`, the end of a
    sentence, or a `)` it did not open (`(--out OUT | --bucket B)` is one of its groups)."""
    depth = 0
    for index, char in enumerate(rest):
        if char in "([":
            depth += 1
        elif char in ")]":
            if depth == 0:
                return index
            depth -= 1
        elif (
            char in ';`"'
            or rest.startswith(("&&", ". ", "? ", "! "), index)
            or rest[index:] in {".", "?", "!"}
            or (rest.startswith(" | ", index) and depth == 0)
        ):
            return index
    return len(rest)


def check_text(
    text: str, owners: list[Cli], clis: dict[str, Cli], indented: bool = True
) -> list[str]:
    """The flags `text` names that do not exist where it says (or, bare, in any of the
    `owners`, the CLIs that show the text)."""
    problems = []
    spans = []
    for name, words, span in command_mentions(text, indented):
        spans.append(span)
        if name not in clis:
            continue
        cli = clis[name]
        valid = set(cli.flags)
        for word in words:
            if word.startswith("-"):
                continue
            if word in cli.subcommands:
                cli = cli.subcommands[word]
                valid |= cli.flags
        problems += [
            f"{flag} is not a flag of python -m {cli.name}"
            for flag in FLAG.findall(" ".join(words))
            if flag not in valid and flag not in cli.all_flags()
        ]
    if not owners or len(text.split()) <= 1:
        return problems
    outside = "".join(
        "\0" if any(start <= index < end for start, end in spans) else char
        for index, char in enumerate(text)
    )
    foreign = set().union(*(flags for word, flags in OTHER_PROGRAMS.items() if word in text))
    known = set().union(*(own.all_flags() for own in owners))
    names = " or ".join(f"python -m {own.name}" for own in owners)
    return problems + [
        f"{flag} is not a flag of {names}"
        for flag in FLAG.findall(outside)
        if flag not in known and flag not in foreign
    ]


def source_findings(clis: dict[str, Cli]) -> list[str]:
    owners: dict[str, list[Cli]] = {}
    for name, sources in MESSAGE_SOURCES.items():
        for source in sources:
            owners.setdefault(source, []).append(clis[name])
    folders = PRODUCT_PACKAGES
    files = [
        *sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py")),
        ROOT / ".github" / "scripts" / "smoke_test.py",
    ]
    findings = []
    for path in files:
        relative = str(path.relative_to(ROOT))
        for line, text in strings(path):
            for problem in check_text(text, owners.get(relative, []), clis):
                findings.append(f"{relative}:{line}: {problem}")
    return findings


def test_every_flag_a_message_names_exists(clis):
    findings = source_findings(clis)
    assert findings == [], "\n".join(findings)


def test_every_flag_a_help_text_names_exists(clis):
    findings = []
    for root in clis.values():
        for cli in root.walk():
            # Each option's help (or paragraph) as one line: argparse wraps them at the
            # terminal's width, and a command must stay whole.
            for entry in re.split(r"\n(?=  -|\S|\n)", cli.parser.format_help()):
                text = " ".join(entry.split())
                findings += [f"{cli.name} --help: {p}" for p in check_text(text, [root], clis)]
    assert findings == [], "\n".join(findings)


def test_every_flag_a_documented_command_names_exists(clis):
    """The commands of the README and docs/ (bare flags there may be any CLI's)."""
    findings = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for problem in check_text(path.read_text(), [], clis, indented=False):
            findings.append(f"{path.relative_to(ROOT)}: {problem}")
    assert findings == [], "\n".join(findings)


def test_the_rule_catches_what_it_should(clis):
    """The scan itself: the mistakes this test exists for are found, the right ones pass."""
    finetune, local = clis["model.finetune"], clis["local"]
    assert check_text("pass --backbone random or --weights PATH", [finetune], clis) == [
        "--weights is not a flag of python -m model.finetune"
    ]
    assert check_text("its classifier has 3 outputs: pass --labels", [local], clis) == [
        "--labels is not a flag of python -m local"
    ]
    assert check_text("then: python -m model.package --labels X --out Y", [local], clis) == []
    assert check_text("next: python -m batch review resolve X --label Y", [], clis) == []
    assert check_text("next: python -m batch review list --label Y", [], clis) == [
        "--label is not a flag of python -m batch review list"
    ]
    assert check_text('make run ARGS="--artifact x.tar.gz --labels y"', [], clis) == [
        "--labels is not a flag of python -m local"
    ]
    assert check_text("--out", [finetune], clis) == [], "a flag's own name"
    assert check_text("default: as local --container", [], clis) == []
    assert check_text("as local --labels does", [], clis) == [
        "--labels is not a flag of python -m local"
    ]
    assert check_text("the loss in batch 3: lower --lr", [finetune], clis) == []


def test_no_type_function_leaks_its_name(clis):
    """argparse says "invalid _positive value: 'abc'" when a type function raises
    ValueError: each of ours raises ArgumentTypeError with a message of its own."""
    findings = []
    for root in clis.values():
        for cli in root.walk():
            for flag in sorted(cli.flags - {"-h", "--help"}):
                for value in ("abc", "-1", "1e999"):
                    said = io.StringIO()
                    with contextlib.redirect_stderr(said), contextlib.suppress(SystemExit):
                        cli.parser.parse_args([flag, value])
                    leak = re.search(r"invalid (?!int |float |choice)\S+ value", said.getvalue())
                    if leak:
                        findings.append(f"{cli.name} {flag} {value!r}: {leak.group(0)}")
    assert findings == []
