"""Data printed to a terminal exactly as text: never Rich markup, emoji codes or control sequences.

File names, headers, values and error messages come from departments; ``[bold]`` or
``[link=file:///etc/passwd]`` in them must print as typed, and a newline or an ANSI escape in a
file name must not reach the terminal raw. :func:`plain` escapes control and format characters
(``\\n``, ``\\x1b``, ``\\u202e``); :func:`literal` makes a Rich ``Text`` of it (which Rich prints
without markup, emoji or highlighting).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.text import Text

_ESCAPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def plain(value: Any) -> str:
    """``value`` as text with control and format characters written as Python escapes."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _ESCAPED else c
                   for c in text)


def literal(*parts: Any, style: str = "") -> Text:
    """A Text of ``parts``: strings as data (``plain``), ``(text, style)`` pairs styled, Texts kept."""
    out = Text(style=style)
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(plain(part[0]), style=part[1])
        else:
            out.append(plain(part))
    return out
