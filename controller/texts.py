"""Human-readable event text in the site's language (vi or en).

Each module keeps its own message templates beside its logic and registers them here, so a
translator finds every template with `grep register(`. Fields are filled with str.format.
"""

from __future__ import annotations

from typing import Any

_MESSAGES: dict[str, dict[str, str]] = {}


def register(messages: dict[str, dict[str, str]]) -> None:
    """messages: key -> {"vi": template, "en": template}."""
    for key, by_lang in messages.items():
        if "vi" not in by_lang or "en" not in by_lang:
            raise ValueError(f"message {key!r} needs both vi and en")
        if key in _MESSAGES and _MESSAGES[key] != by_lang:
            raise ValueError(f"message {key!r} registered twice with different text")
        _MESSAGES[key] = by_lang


def render(lang: str, key: str, **fields: Any) -> str:
    by_lang = _MESSAGES[key]
    template = by_lang.get(lang) or by_lang["en"]
    return template.format(**fields)


def known() -> dict[str, dict[str, str]]:
    return dict(_MESSAGES)
