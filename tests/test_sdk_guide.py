"""docs/sdk.md runs as written, and its tables agree with the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sealroom.conference.asyncapi
import sealroom.sdk
from sealroom.conference.asyncapi import CLOSE_CODES, ERROR_CODES
from sealroom.idp import DevIdp, create_idp_app
from sealroom.sdk.events import EVENT_TYPES

GUIDE = Path(__file__).parents[1] / "docs" / "sdk.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def test_the_guide_runs_as_written() -> None:
    """Every block, in order, in one namespace, against real services (the first block
    starts them; the last stops them, and so does this test if a block fails)."""
    blocks = _blocks()
    assert len(blocks) >= 8
    namespace: dict[str, Any] = {"__name__": "sdk_guide"}
    try:
        for block in blocks:
            exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        stack = namespace.get("stack")
        if stack is not None:
            stack.stop()


def _table(marker: str) -> dict[str, str]:
    text = GUIDE.read_text()
    start = text.index(f"<!-- {marker}:")
    rows: dict[str, str] = {}
    for line in text[start:].splitlines()[3:]:
        if not line.startswith("|"):
            break
        code, meaning = (cell.strip() for cell in line.strip("|").split("|"))
        rows[code.strip("`")] = meaning
    return rows


def test_the_conference_error_codes_in_the_guide_are_the_services() -> None:
    assert _table("conference-error-codes") == ERROR_CODES


def test_the_conference_close_codes_in_the_guide_are_the_services() -> None:
    assert _table("conference-close-codes") == {str(k): v for k, v in CLOSE_CODES.items()}


def test_the_dev_idp_routes_are_the_documented_ones(tmp_path: Path) -> None:
    app = create_idp_app(DevIdp(tmp_path))
    served = {
        (method, route.path)
        for route in app.routes
        for method in (getattr(route, "methods", None) or {"GET"}) - {"HEAD"}
    }
    text = GUIDE.read_text()
    section = text[text.index("## The development identity provider") :]
    documented = set(re.findall(r"^\| `(GET|POST) (/[^`]*)`", section, flags=re.MULTILINE))
    assert documented == served


def test_the_guide_names_every_event_and_every_export() -> None:
    text = GUIDE.read_text()
    missing = [name for name in sealroom.sdk.__all__ if f"`{name}`" not in text]
    assert not missing, missing
    for cls in EVENT_TYPES.values():
        assert f"`{cls.__name__}`" in text, cls.__name__


def test_every_close_code_the_service_uses_is_in_the_table() -> None:
    """The codes in ``close(code=...)`` and those the handshake returns: all described (the
    SDK's table above is checked against the same dict)."""
    src = Path(sealroom.conference.asyncapi.__file__).parent
    used: set[int] = set()
    for path in src.glob("*.py"):
        text = path.read_text()
        used |= {int(c) for c in re.findall(r"close\(code=(\d{4})", text)}
        used |= {int(c) for c in re.findall(r"return (\d{4})\b", text)}
        used |= {int(c) for c in re.findall(r"\b(\d{4}) if exc\.status", text)}
        used |= {int(c) for c in re.findall(r"else (\d{4})\b", text)}
    assert {1011, 1013, 4400, 4401, 4403, 4410, 4429} <= used
    assert used <= set(CLOSE_CODES), used - set(CLOSE_CODES)
