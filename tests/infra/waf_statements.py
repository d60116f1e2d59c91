"""The web ACL's statements as WAF documents them, evaluated for a request in tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def matches(statement: Mapping[str, Any], path: str, labels: set[str]) -> bool:
    """Whether `statement` (of the kinds the stack's own rules use) matches a request to
    `path` that the rules before it labelled with `labels`."""
    if "andStatement" in statement:
        return all(matches(s, path, labels) for s in statement["andStatement"]["statements"])
    if "orStatement" in statement:
        return any(matches(s, path, labels) for s in statement["orStatement"]["statements"])
    if "notStatement" in statement:
        return not matches(statement["notStatement"]["statement"], path, labels)
    if "labelMatchStatement" in statement:
        match = statement["labelMatchStatement"]
        assert match["scope"] == "LABEL"
        return match["key"] in labels
    match = statement["byteMatchStatement"]
    assert match["fieldToMatch"] == {"uriPath": {}}
    assert match["textTransformations"] == [{"priority": 0, "type": "NONE"}]
    constraint, value = match["positionalConstraint"], match["searchString"]
    return {"EXACTLY": path == value, "STARTS_WITH": path.startswith(value)}[constraint]
