"""The config keys in the docs: `Pulumi.yaml` alone states each default, and the keys
removed in issue 21 appear only where they are explained (the upgrade table and the
error that names their replacement)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.stack_config import (
    BURST_PER_RATE,
    PROJECT_KEYS,
    REMOVED_KEYS,
    WAF_SHARE_OF_RATE,
)
from tests.infra.conftest import ROOT

DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
UPGRADE_SECTION = "## Upgrading a stack"
WINDOW = 120
"""Characters after a key's mention that still speak of it (cut at the sentence's end)."""


def declared_defaults() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {
        key: spec["default"] if isinstance(spec, dict) else spec for key, spec in config.items()
    }


def _spellings(default: Any) -> list[str]:
    """How a doc would write `default`: a boolean as the engine writes it, or on/off."""
    if isinstance(default, bool):
        return ["true", "on"] if default else ["false", "off"]
    return [str(default)] if default != "" else []


def restatements(text: str, key: str, default: Any) -> list[str]:
    """Where `text` restates `key`'s default: the default's value and the word "default" in
    the clause that names the key (`key` (default 60), `key: true` (the default), `key`,
    300 ... by default), or the key's type and value as a declaration (`key` (integer, `0`)
    or `key` (`0`))."""
    found = []
    for mention in re.finditer(rf"`{re.escape(key)}(?::[^`]*)?`", text):
        clause = re.split(r"\.\s|\n\n|;", text[mention.start() : mention.end() + WINDOW])[0]
        value = any(
            re.search(rf"(?<![\w.-]){re.escape(spelling)}(?![\w-])", clause)
            for spelling in _spellings(default)
        )
        declared = any(
            re.match(
                rf"`{re.escape(key)}` \((?:(?:string|integer|boolean), )?`{re.escape(v)}`", clause
            )
            for v in [*_spellings(default), '""']
        )
        if (value and re.search(r"\bdefault", clause)) or declared:
            found.append(clause)
    return found


@pytest.mark.parametrize(
    ("text", "key", "default"),
    [
        (
            "waits up to `rolloutTimeoutMinutes` (default 60) and prints",
            "rolloutTimeoutMinutes",
            60,
        ),
        ("With `monitoring: true` (the default) the stack creates", "monitoring", True),
        ("on `/api/` (`wafRateLimit`, 300 requests in 5 minutes by default).", "wafRateLimit", 300),
        ("`tracing` (boolean, `false`): active X-Ray tracing", "tracing", False),
        ("`monthlyBudgetUsd` (integer, `0`: no budget", "monthlyBudgetUsd", 0),
        ('`alarmEmail` (string, `""`: no subscription', "alarmEmail", ""),
        ("`waf` is off by default", "waf", False),
    ],
)
def test_the_check_finds_a_restated_default(text, key, default):
    assert restatements(text, key, default)


@pytest.mark.parametrize(
    ("text", "key", "default"),
    [
        ("set `throttleRateLimit` to 50 in prod; its burst is twice it", "throttleRateLimit", 10),
        ("`batchConcurrency` (0: half of `serverlessMaxConcurrency`)", "batchConcurrency", 0),
        ("With `monitoring` on the stack creates an SNS topic", "monitoring", True),
    ],
)
def test_the_check_leaves_other_mentions_alone(text, key, default):
    assert restatements(text, key, default) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_no_doc_restates_a_default_that_pulumi_yaml_declares(doc: Path):
    text = doc.read_text()
    found = {
        key: clauses
        for key, default in declared_defaults().items()
        if (clauses := restatements(text, key, default))
    }
    assert found == {}, f"{doc.name}: link to Pulumi.yaml instead of restating: {found}"


def test_the_config_docs_link_to_pulumi_yaml():
    for name in ("contracts.md", "cost.md"):
        assert "](../Pulumi.yaml)" in (ROOT / "docs" / name).read_text(), name


def upgrade_table() -> dict[str, str]:
    """The removed keys' table in operations.md: key -> what replaced it."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split(UPGRADE_SECTION, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, re.M)
    return dict(rows)


def test_every_removed_key_has_a_row_naming_what_the_error_names():
    table = upgrade_table()
    assert list(table) == list(REMOVED_KEYS)
    for key, replacement in REMOVED_KEYS.items():
        named = re.match(r"(?:replaced by|derived from) (\w+)", replacement)
        if named is None:
            assert table[key].startswith("nothing: "), key
            continue
        assert named[1] in PROJECT_KEYS
        assert table[key].startswith(f"`{named[1]}`") or f"from `{named[1]}`" in table[key]


UNAMBIGUOUS = sorted(set(REMOVED_KEYS) - {"variants", "modelVersion"})
"""Removed keys no other name shares (`variants` is also the proxy's, `modelVersion` a
field of config.js)."""
EXPLAINED_IN = {"components/stack_config.py", "docs/operations.md"}
"""The error and the upgrade table."""


def test_no_stale_mention_of_a_removed_key():
    tracked = subprocess.run(
        ["git", "ls-files", "--", ":!tests/", ":!node_modules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pattern = re.compile(rf"\b({'|'.join(UNAMBIGUOUS)})\b")
    stale = {}
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".yaml", ".yml", ".js", ".json", ".sh", ""}:
            continue
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if name == "docs/operations.md":
            text = text.replace(text.split(UPGRADE_SECTION, 1)[1].split("\n## ", 1)[0], "")
        elif name in EXPLAINED_IN:
            continue
        if found := sorted(set(pattern.findall(text))):
            stale[name] = found
    assert stale == {}


def test_the_derived_values_are_described_as_the_code_derives_them():
    """The docs say "twice the rate" and "a tenth": true only while the constants are."""
    said = "\n".join(path.read_text() for path in [*DOCS, ROOT / "Pulumi.yaml"])
    if re.search(r"twice (?:the|its) rate|burst is twice", said):
        assert BURST_PER_RATE == 2
    if "a tenth of the requests" in said:
        assert WAF_SHARE_OF_RATE == 10
