"""Strict YAML reading for the catalog and the expectations: every value keeps its file position.

Catalog files are small, hand-written configuration, so the reader refuses what such a file never
needs and what makes a mistake silent or a load hang: duplicate keys (the second one would win
unnoticed), anchors and aliases (a kilobyte of nested aliases expands to billions of nodes), files
larger than ``MAX_BYTES`` and text that is not UTF-8. Problems are ``file:line:col: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1_000_000
"""Largest catalog or expectations file read (the biggest real one is a few kilobytes)."""

Loc = tuple
"""Path to a value: mapping keys and list indexes, e.g. ``("items", 3, "column")``."""


class _Refused(yaml.YAMLError):
    def __init__(self, message: str, mark: yaml.Mark):
        super().__init__(message)
        self.message, self.mark = message, mark


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when present (several times faster than the pure-Python one)."""


def _compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``, refusing anchors and aliases before anything is composed."""
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            what = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise _Refused(f"YAML {what}{event.anchor} is not allowed in a catalog file "
                           "(write the value out)", event.start_mark)
    return yaml.compose(text, Loader=_LOADER)


@dataclass
class YamlDoc:
    """One file's data with the position of every value, and what was wrong with it."""

    path: Path
    data: Any = None
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    """Position (1-based line, column) of each value."""
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    """Position of each mapping key (its value's ``Loc``)."""
    problems: list[str] = field(default_factory=list)
    readable: bool = True
    """False when the file is missing or could not be parsed at all (``data`` is None)."""

    def position(self, loc: Loc = (), *, key: bool = False) -> tuple[int, int] | None:
        """(line, column) of ``loc`` (its key with ``key``), else of its nearest known parent."""
        for cut in range(len(loc), -1, -1):
            at = (self.keys if key and cut == len(loc) else self.values).get(loc[:cut])
            if at:
                return at
        return None

    def where(self, loc: Loc = (), *, key: bool = False) -> str:
        """``file:line:col`` of ``loc`` (see ``position``); ``file:1`` when nothing is known."""
        at = self.position(loc, key=key)
        return f"{self.path}:{at[0]}:{at[1]}" if at else f"{self.path}:1"

    def line(self, loc: Loc = ()) -> int:
        """Line of ``loc`` (or of its nearest known parent); 1 when nothing is known."""
        at = self.position(loc)
        return at[0] if at else 1

    def sorted_problems(self) -> list[str]:
        """The problems in file order (by line, then column)."""
        def key(text: str) -> tuple[int, int]:
            parts = text.removeprefix(f"{self.path}:").split(":", 2)
            return (int(parts[0]) if parts[0].isdigit() else 0,
                    int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0)

        return sorted(self.problems, key=key)

    def problem(self, loc: Loc, message: str, *, key: bool = False) -> str:
        """Record and return ``file:line:col: message``."""
        text = f"{self.where(loc, key=key)}: {message}"
        self.problems.append(text)
        return text


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _to_python(node: yaml.Node, loc: Loc, doc: YamlDoc, constructor: yaml.constructor.SafeConstructor) -> Any:
    doc.values[loc] = _pos(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _pos(key_node.start_mark)
                doc.problems.append(f"{doc.path}:{line}:{col}: a mapping key must be plain text")
                continue
            key = key_node.value
            if key in out:
                first = doc.keys[(*loc, key)]
                line, col = _pos(key_node.start_mark)
                doc.problems.append(f"{doc.path}:{line}:{col}: duplicate key {key!r} "
                                    f"(first at line {first[0]}); the second would silently replace the first")
                continue
            doc.keys[(*loc, key)] = _pos(key_node.start_mark)
            out[key] = _to_python(value_node, (*loc, key), doc, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n, (*loc, i), doc, constructor) for i, n in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def read_yaml(path: Path, *, required: bool = True) -> YamlDoc:
    """Read ``path`` strictly; problems go to ``doc.problems`` instead of being raised.

    Args:
        path: the YAML file.
        required: a missing file is a problem (else an empty, readable document).
    """
    doc = YamlDoc(path)
    if not path.is_file():
        doc.readable = False
        if required:
            doc.problems.append(f"{path}: missing" + (" (a folder, not a file)" if path.exists() else ""))
        return doc
    size = path.stat().st_size
    if size > MAX_BYTES:
        doc.readable = False
        doc.problems.append(f"{path}: {size:,} bytes; a catalog file may have at most {MAX_BYTES:,}")
        return doc
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        doc.readable = False
        line = raw.count(b"\n", 0, exc.start) + 1
        doc.problems.append(f"{path}:{line}: not UTF-8 (byte offset {exc.start}: {raw[exc.start:exc.start + 2]!r}); "
                            "save the file as UTF-8")
        return doc
    try:
        node = _compose(text)
        doc.data = None if node is None else _to_python(node, (), doc, yaml.constructor.SafeConstructor())
    except _Refused as exc:
        doc.readable, doc.data = False, None
        line, col = _pos(exc.mark)
        doc.problems.append(f"{path}:{line}:{col}: {exc.message}")
    except yaml.YAMLError as exc:
        doc.readable, doc.data = False, None
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1"
        problem = getattr(exc, "problem", None)
        context = getattr(exc, "context", None)
        reason = " ".join(((f"{context}: " if context else "") + str(problem or exc)).split())
        doc.problems.append(f"{where}: not valid YAML: {reason}")
    except RecursionError:
        doc.readable, doc.data = False, None
        doc.problems.append(f"{path}:1: not valid YAML: nested too deeply")
    return doc
