"""docs/api.md lists every error code the proxy sends and every variable it reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API_DOC = (ROOT / "docs" / "api.md").read_text()
SOURCES = {path.name: path.read_text() for path in (ROOT / "proxy").glob("*.py")}


def test_every_error_code_is_in_the_table():
    codes = {
        (int(status), code)
        for text in SOURCES.values()
        for status, code in re.findall(r'ApiError\(\s*(\d{3}),\s*"([a-z0-9_]+)"', text)
    }
    assert len(codes) > 10
    for status, code in codes:
        assert f"| {status} | `{code}` | proxy" in API_DOC, (status, code)


def test_every_variable_is_in_the_configuration_table():
    config = SOURCES["config.py"]
    names = set(re.findall(r'environ\.get\("([A-Z_]+)"', config))
    names |= set(re.findall(r'_number\(\s*environ,\s*"([A-Z_]+)"', config))
    assert {"ORIGIN_SECRET", "API_KEYS_PATH", "API_KEYS_FILE", "API_KEYS_CACHE_SECONDS"} <= names
    for name in names:
        assert f"| `{name}` |" in API_DOC, name


REVOCATION = re.compile(
    r"revok\w*(?:(?!\n\n)[^.])*?\bwithin\b|\bwithin (?:a minute|\d+ ?s)\b[^.]*revok", re.I
)


def test_the_revocation_delay_is_stated_once_and_linked_from_everywhere_else():
    """How soon a revoked key is refused: said in docs/api.md#revocation-delay only."""
    texts = {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for path in [
            ROOT / "README.md",
            *(ROOT / "docs").rglob("*.md"),
            *(ROOT / "proxy").glob("*.py"),
            *(ROOT / "admin").glob("*.py"),
            *(ROOT / "local").glob("*.py"),
        ]
    }
    stated = {name for name, text in texts.items() if REVOCATION.search(text)}
    assert stated == {"docs/api.md"}
    section = API_DOC.split("#### Revocation delay", 1)[1].split("\n#", 1)[0]
    assert REVOCATION.search(section)
    assert len(REVOCATION.findall(API_DOC)) == 1
    linked = {name for name, text in texts.items() if "revocation-delay" in text}
    assert {
        "docs/operations.md",
        "docs/contracts.md",
        "proxy/api_keys.py",
        "admin/api_keys.py",
    } <= linked
