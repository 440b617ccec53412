"""Every difference between the SQL engines lives here.

Models, rules and the helpers below are written in DuckDB's SQL. ``Dialect.to_engine`` turns a
rendered model into the SQL of the engine that runs it; for Spark (:func:`to_spark`) that is
sqlglot's DuckDB → Spark translation plus the rewrites below, for what sqlglot gets wrong, drops or
leaves out (tests/test_spark_parity.py runs every model on both engines and compares the rows):

- regular expressions (``regexp_replace``, ``regexp_matches``, ``regexp_full_match``,
  ``regexp_extract``): RE2's syntax in java.util.regex's (``.``, ``$``, ``\\s``, ``\\b``, ``[``
  and ``&`` in classes, scripts, named groups), the replacement's ``\\1`` as ``$1``, and
  ``regexp_replace`` without the ``g`` flag replacing the first match only (Spark's replaces all);
  the ``i`` flag kept (sqlglot drops every flag);
- ``try_strptime``: DuckDB's reading of a format (1–4 digit years, 1–2 digit fields read greedily,
  surrounding whitespace skipped, a space in the format matching any run of whitespace) as a regex
  that rebuilds the text for ``try_to_timestamp``;
- casts to integers of decimals (rounded half away from zero) and doubles (half to even), which
  Spark truncates, where the SQL shows the operand's type (a cast, a literal); of ``'0x' || digits``,
  which DuckDB reads as hexadecimal (``conv(digits, 16, 10)``: storage.key_hash_sql);
- ordered and unordered ``list(…)`` aggregates (sqlglot drops the ``order by``; Spark's
  ``collect_list`` drops nulls), list comprehensions (``[e for v in l if c]``);
- DuckDB-only list functions: ``list_has_all``, ``list_sum`` (nulls skipped, null for an empty
  list), ``list_has_any`` (nulls ignored; sqlglot writes an ``&&`` Spark does not parse);
- ``like`` patterns holding a backslash (an escape for Spark, a plain character for DuckDB);
- ``a semi|anti join b using (k)`` as ``on`` (Spark puts ``k`` first in ``select *``), ``create
  [or replace] temp table … as`` as a temporary view, ``qualify`` kept (Spark 4.2 has it; sqlglot
  would move it into a subquery that leaks its row number through ``select *``), timestamps as
  ``timestamp_ntz`` and ``timestamptz`` as ``timestamp_ltz``;
- ``* replace (… as c)`` and ``union [all] by name`` need the input tables' columns: given
  ``schema`` (table → columns, what the engine registered), stars are expanded in place (column
  order kept) and by-name unions lined up by position.

Regex syntax, strptime formats and list forms with no translation here raise ValueError. Known
differences left as they are (no model has them): a decimal or double *column* cast to an integer
(its type is not known here), text cast to an integer (``'12.5'``: DuckDB rounds, Spark gives null),
``list_sum`` over decimals (Spark fails: ``aggregate`` keeps its start value's type), doubles cast to
text (``1e-05`` / ``1.0E-5``), years before 1 (DuckDB reads ``0-1-5`` as 1 BC).
The Spark session must run with :data:`SPARK_CONF`: the translations assume it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp, transforms
from sqlglot.dialects.spark import Spark
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

DialectName = Literal["duckdb", "spark"]

WHITESPACE = " \t\r\n\u3000"

SPARK_CONF: dict[str, str] = {
    # Lake timestamps are UTC instants (`_received_at`) or naive wall clocks; `at time zone` becomes
    # from_utc_timestamp, which gives DuckDB's answer only when the session reads instants in UTC.
    "spark.sql.session.timeZone": "UTC",
    # Spark 4's default, stated: a cast that cannot succeed fails the query, as in DuckDB; the models
    # use try_cast / try_strptime where text may not parse.
    "spark.sql.ansi.enabled": "true",
    # try_to_timestamp gives null for text the pattern does not fit, instead of failing on text the
    # pre-3.0 parser would have read differently.
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    # DuckDB's `timestamp` is naive: try_to_timestamp (try_strptime) gives timestamp_ntz, and naive
    # Parquet timestamps (silver's `timestamp` items) are read as timestamp_ntz.
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    # Spark 4.2's RemoveRedundantAliases leaves an unresolved plan (PLAN_VALIDATION_FAILED_RULE_IN_BATCH) for
    # a union whose sides are empty relations, semi-joined and windowed: the credit step's repair input
    # of a city with no repair feed (tests/test_spark_parity.py). The rule only drops no-op aliases.
    "spark.sql.optimizer.excludedRules": "org.apache.spark.sql.catalyst.optimizer.RemoveRedundantAliases",
}
"""Session settings the Spark SQL of :meth:`Dialect.to_engine` is written for."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---- regular expressions: RE2 (DuckDB) → java.util.regex (Spark) ---------------------------------

_RE2_SPACE = r"\t\n\f\r "
"""RE2's ``\\s`` (Java's also holds the vertical tab)."""
_WORD = "[0-9A-Za-z_]"
"""RE2's ``\\w``, which its ``\\b`` is about (Java 17's ``\\b`` also counts 中 as a word character)."""
_CATEGORIES = {"L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd",
               "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf",
               "Co", "Cs", "Any"}
_INLINE_FLAGS = re.compile(r"\(\?(i?)(:|\))")


def java_regex(pattern: str) -> str:
    """RE2 ``pattern`` (DuckDB's regexes) as a java.util.regex pattern (Spark's) matching the same text.

    Raises ValueError for RE2 syntax with no translation here (POSIX classes, flags other than i).
    """
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 == n:
                raise ValueError(f"regex {pattern!r} ends with a backslash")
            e = pattern[i + 1]
            i += 2
            if e == "Q":  # literal text up to \E: the same in both
                end = pattern.find("\\E", i)
                end = n if end < 0 else end + 2
                out.append("\\Q" + pattern[i:end])
                i = end
            elif e in "sS":
                if in_class and e == "S":
                    raise ValueError(f"regex {pattern!r}: \\S inside a character class has no translation")
                out.append(_RE2_SPACE if in_class else f"[{'^' if e == 'S' else ''}{_RE2_SPACE}]")
            elif e in "bB" and not in_class:
                at = "(?<={w})(?={w})|(?<!{w})(?!{w})" if e == "B" else "(?<={w})(?!{w})|(?<!{w})(?={w})"
                out.append("(?:" + at.format(w=_WORD) + ")")
            elif e in "pP":
                if i < n and pattern[i] == "{":
                    end = pattern.index("}", i)
                    name, i = pattern[i + 1:end], end + 1
                else:
                    name, i = pattern[i:i + 1], i + 1
                negate = name.startswith("^")
                name = name.lstrip("^")
                java = name if name in _CATEGORIES else f"Is{name}"  # a script: Han → IsHan
                out.append(f"\\{'P' if (e == 'P') != negate else 'p'}{{{java}}}")
            elif e == "C":
                raise ValueError(f"regex {pattern!r}: \\C (any byte) has no translation")
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if c == "]":
                in_class = False
                out.append(c)
            elif c == "[":
                if pattern.startswith("[:", i):
                    raise ValueError(f"regex {pattern!r}: POSIX classes ([:alpha:]) have no translation")
                out.append("\\[")  # Java: a nested class (a union)
            elif c == "&":
                out.append("\\&")  # Java: && is an intersection
            else:
                out.append(c)
            i += 1
            continue
        if c == "[":
            out.append("[")
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # RE2: a ] first in a class is itself
                out.append("\\]")
                i += 1
            in_class = True
            continue
        if c == ".":
            out.append("[^\\n]")  # Java's . also stops at \r, \u0085, \u2028, \u2029
        elif c == "$":
            out.append("\\z")  # Java's $ also matches before a final line break
        elif pattern.startswith("(?P<", i):
            out.append("(?<")
            i += 4
            continue
        elif pattern.startswith("(?", i):
            flags = _INLINE_FLAGS.match(pattern, i)
            if not flags:
                raise ValueError(f"regex {pattern!r}: only the inline flag i has a translation")
            out.append("(?" + ("iu" if flags[1] else "") + flags[2])
            i = flags.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


_CODE_POINT_START = r"(?![\x{DC00}-\x{DFFF}])"
"""Not inside a surrogate pair: Java looks for a match at every UTF-16 unit (after an empty match
too), RE2 at every character, so a 𠮷 would otherwise be split."""


def _scanning(pattern: str, flags: str = "") -> str:
    """A pattern Spark looks for anywhere in the text (rlike, regexp_replace, regexp_extract)."""
    return _case(flags) + _CODE_POINT_START + java_regex(pattern)


def _java_replacement(text: str, pattern: str, *, group_offset: int = 0, whole: int = 0) -> str:
    """A regexp_replace replacement in RE2's terms (``\\1`` a group, ``\\0`` the match, ``\\\\`` a
    backslash) in Java's (``$1``, ``\\\\``, ``\\$`` a dollar), for the Java ``pattern``; groups shifted
    by ``group_offset``, the match as group ``whole``."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt.isdigit():
                group = int(nxt)
                out.append(f"${group + group_offset if group else whole}")
                if text[i + 2:i + 3].isdigit() and pattern.count("(") >= 10:  # Java would read $12 as group 12
                    raise ValueError(f"replacement {text!r}: a digit right after a group has no translation")
            elif nxt == "\\":
                out.append("\\\\")
            else:
                raise ValueError(f"replacement {text!r}: RE2 allows only \\0-\\9 and \\\\ after a backslash")
            i += 2
            continue
        out.append("\\$" if c == "$" else c)
        i += 1
    return "".join(out)


def _flags(node: exp.Expression | None, allowed: str, what: str) -> str:
    if node is None:
        return ""
    flags = _literal(node, f"{what}'s options")
    if set(flags) - set(allowed):
        raise ValueError(f"{what}: options {flags!r} have no translation (only {allowed!r})")
    return flags


def _case(flags: str) -> str:
    """Java's inline flag for DuckDB's case options (the last of c and i wins)."""
    last = max((flags.rfind("i"), "(?iu)"), (flags.rfind("c"), ""))
    return last[1] if last[0] >= 0 else ""


# ---- try_strptime: DuckDB's reading of a format, for try_to_timestamp --------------------------------

_STRPTIME_FIELDS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "f": 6}
"""Digits DuckDB reads (greedily, at least one) for each field."""
_CANONICAL = (("Y", "", "y"), ("m", "-", "M"), ("d", "-", "d"), ("H", " ", "H"), ("M", ":", "m"), ("S", ":", "s"),
              ("f", ".", "SSSSSS"))
"""The text try_to_timestamp is given: each field after its separator, in this order."""
_SPACE = r"[\t\n\x{0B}\f\r ]"
"""What DuckDB's strptime skips around the text and reads for a space of the format."""


def strptime_regex(fmt: str) -> tuple[str, str, str]:
    """``(regex, replacement, pattern)``: the Java regex a text DuckDB's ``strptime(text, fmt)`` reads
    matches, its replacement giving the fields in a canonical text, and that text's Spark pattern."""
    regex, groups, i = ["^", _SPACE, "*"], {}, 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%":
            field = fmt[i + 1:i + 2]
            if field not in _STRPTIME_FIELDS or field in groups:
                raise ValueError(f"strptime format {fmt!r}: %{field} has no translation")
            groups[field] = len(groups) + 1
            regex.append(f"([0-9]{{1,{_STRPTIME_FIELDS[field]}}}+)")  # possessive: DuckDB does not backtrack
            i += 2
        elif c.isspace():
            regex.append(_SPACE + "+")
            i += 1
        else:
            regex.append(re.escape(c) if c.isascii() else c)
            i += 1
    regex += [_SPACE, "*\\z"]
    fields = [f for f, _, _ in _CANONICAL[:len(groups)]]
    if set(fields) != set(groups):
        raise ValueError(f"strptime format {fmt!r}: needs %Y, %m, %d then optionally %H, %M, %S, %f")
    replacement = "".join(f"{sep}${groups[f]}" for f, sep, _ in _CANONICAL[:len(groups)])
    pattern = "".join(sep + java for _, sep, java in _CANONICAL[:len(groups)])
    return "".join(regex), replacement, pattern


# ---- the Spark SQL generator -----------------------------------------------------------------------


class _SparkSql(Spark):
    """sqlglot's Spark dialect, for Spark 4.2: ``qualify`` kept, timestamps named by their kind,
    ``arrays_overlap`` for DuckDB's ``list_has_any`` (sqlglot writes ``&&``)."""

    class Generator(Spark.Generator):
        TRANSFORMS = {
            **Spark.Generator.TRANSFORMS,
            exp.ArrayOverlaps: lambda self, e: self.func("ARRAYS_OVERLAP", e.this, e.expression),
            exp.Select: transforms.preprocess(
                [transforms.eliminate_distinct_on, transforms.unnest_to_explode, transforms.any_to_exists]),
        }
        TYPE_MAPPING = {
            **Spark.Generator.TYPE_MAPPING,
            exp.DataType.Type.TIMESTAMP: "TIMESTAMP_NTZ",
            exp.DataType.Type.TIMESTAMPTZ: "TIMESTAMP_LTZ",
        }


def _spark(sql: str, **args: exp.Expression) -> exp.Expression:
    """A Spark expression with ``args`` put in place of the columns of those names."""
    tree = sqlglot.parse_one(sql, read="spark")
    return tree.transform(lambda n: args[n.name].copy() if isinstance(n, exp.Column) and n.name in args else n)


def _literal(node: exp.Expression, what: str) -> str:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise ValueError(f"{what} needs a literal string for Spark, got {node.sql('duckdb')}")
    return node.this


def _string(text: str) -> exp.Literal:
    return exp.Literal.string(text)


_INTEGERS = {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT}


def _static_type(node: exp.Expression) -> str | None:
    """``decimal`` / ``double`` when ``node``'s type shows in the SQL (a cast, a numeric literal)."""
    if isinstance(node, exp.Cast):  # TryCast too
        to = node.to
        if to.is_type(exp.DataType.Type.DECIMAL):
            return "decimal"
        if to.is_type(exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT):
            return "double"
    if isinstance(node, exp.Literal) and node.is_number and not node.this.isdigit():
        return "decimal"
    return None


def _ordered_list(node: exp.ArrayAgg) -> exp.Expression:
    """DuckDB's ``list(x [order by k…])`` (nulls kept, in that order) in Spark's terms."""
    if node.args.get("distinct") or isinstance(node.this, exp.Distinct) or isinstance(node.parent, exp.Filter):
        raise ValueError(f"{node.sql('duckdb')}: list(distinct …) or list(…) filter has no translation")
    order = node.this if isinstance(node.this, exp.Order) else None
    value = order.this if order else node.this
    keys = order.expressions if order else []
    fields = ", ".join([f"_arg_k{i} as _k{i}" for i in range(len(keys))] + ["_arg_v as _v"])
    collected = f"collect_list(struct({fields}))"
    if keys:
        def compare(i: int) -> str:
            if i == len(keys):
                return "0"
            k, key = f"_k{i}", keys[i]
            nulls = -1 if key.args.get("nulls_first") else 1
            less = 1 if key.args.get("desc") else -1
            return (f"case when _l.{k} is null and _r.{k} is null then {compare(i + 1)} "
                    f"when _l.{k} is null then {nulls} when _r.{k} is null then {-nulls} "
                    f"when _l.{k} < _r.{k} then {less} when _l.{k} > _r.{k} then {-less} else {compare(i + 1)} end")
        collected = f"array_sort({collected}, (_l, _r) -> {compare(0)})"
    args = {f"_arg_k{i}": k.this for i, k in enumerate(keys)} | {"_arg_v": value}
    return _spark(f"transform({collected}, _e -> _e._v)", **args)


def _comprehension(node: exp.Array) -> exp.Expression:
    """DuckDB's ``[e for v in list if c]`` → ``transform(filter(list, v -> c), v -> e)``."""
    (comp,) = node.expressions
    if not isinstance(comp, exp.Comprehension) or comp.args.get("position") is not None:
        raise ValueError(f"{node.sql('duckdb')}: only [e for v in list if c] has a translation")
    var, items = comp.expression, comp.args["iterator"]
    if comp.args.get("condition") is not None:
        keep = exp.Lambda(this=comp.args["condition"], expressions=[var.copy()])
        items = exp.ArrayFilter(this=items, expression=keep)
    if isinstance(comp.this, exp.Column) and not comp.this.table and comp.this.name == var.name:
        return items
    return exp.Transform(this=items, expression=exp.Lambda(this=comp.this, expressions=[var.copy()]))


def _function(node: exp.Expression) -> exp.Expression:
    """DuckDB functions in Spark's terms (their arguments already translated)."""
    if isinstance(node, exp.Anonymous):
        name, args = node.name.lower(), node.expressions
        if name == "list_has_all" and len(args) == 2:
            return _spark("forall(_arg2, _x -> _x is null or array_contains(array_compact(_arg1), _x))",
                          _arg1=args[0], _arg2=args[1])
        if name == "list_sum" and len(args) == 1:
            present = _spark("filter(_arg1, _x -> _x is not null)", _arg1=args[0])
            return _spark("aggregate(slice(_arg1, 2, size(_arg1)), try_element_at(_arg1, 1), (_acc, _x) -> _acc + _x)",
                          _arg1=present)
        if name == "try_strptime" and len(args) == 2:
            regex, replacement, pattern = strptime_regex(_literal(args[1], "try_strptime's format"))
            return _spark("case when _arg1 rlike _regex then try_to_timestamp(regexp_replace(_arg1, _regex, _repl), "
                          "_pattern) end", _arg1=args[0], _regex=_string(regex), _repl=_string(replacement),
                          _pattern=_string(pattern))
        if name == "strlen" and len(args) == 1:  # bytes
            return _spark("octet_length(_arg1)", _arg1=args[0])
        if name in ("strptime", "regexp_split_to_array", "string_split_regex", "regexp_extract_all"):
            raise ValueError(f"{name} has no Spark translation here")
        return node
    if isinstance(node, exp.ArrayOverlaps):  # list_has_any: nulls ignored, as DuckDB
        return exp.ArrayOverlaps(this=_spark("array_compact(_a)", _a=node.this),
                                 expression=_spark("array_compact(_a)", _a=node.expression))
    if isinstance(node, exp.RegexpReplace):
        return _regexp_replace(node)
    if isinstance(node, exp.RegexpLike):
        flags = _flags(node.args.get("flag"), "ci", "regexp_matches")
        pattern = _scanning(_literal(node.expression, "regexp_matches' pattern"), flags)
        return exp.RegexpLike(this=node.this, expression=_string(pattern))
    if isinstance(node, exp.RegexpFullMatch):
        if node.args.get("options") is not None:
            raise ValueError("regexp_full_match's options have no translation")
        pattern = java_regex(_literal(node.expression, "regexp_full_match's pattern"))
        return exp.RegexpLike(this=node.this, expression=_string(f"^(?:{pattern})\\z"))
    if isinstance(node, exp.RegexpExtract):
        _flags(node.args.get("parameters"), "", "regexp_extract")
        node.set("expression", _string(_scanning(_literal(node.expression, "regexp_extract's pattern"))))
        return node
    if isinstance(node, exp.ArrayAgg):
        return _ordered_list(node)
    if isinstance(node, exp.Array) and any(isinstance(e, exp.Comprehension) for e in node.expressions):
        return _comprehension(node)
    if isinstance(node, exp.Like | exp.ILike) and isinstance(node.expression, exp.Literal) \
            and "\\" in node.expression.this and not isinstance(node.parent, exp.Escape):
        node.set("expression", _string(node.expression.this.replace("\\", "\\\\")))
        return node
    if isinstance(node, exp.Cast) and node.to.this in _INTEGERS and _hexadecimal(node.this) is not None:
        # DuckDB casts a '0x'-prefixed string as a hexadecimal number (storage.key_hash_sql); Spark's cast does not
        node.set("this", _spark("conv(_arg1, 16, 10)", _arg1=_hexadecimal(node.this)))
        return node
    if isinstance(node, exp.Cast) and node.to.this in _INTEGERS:
        rounding = {"decimal": "round", "double": "bround"}.get(_static_type(node.this))
        if rounding:  # DuckDB rounds (decimals half away from zero, doubles half to even); Spark truncates
            node.set("this", _spark(f"{rounding}(_arg1, 0)", _arg1=node.this))
        return node
    return node


def _hexadecimal(node: exp.Expression) -> exp.Expression | None:
    """Of ``'0x' || digits`` (in parentheses or not), the digits; else None."""
    node = node.unnest()
    if isinstance(node, exp.DPipe) and isinstance(node.this, exp.Literal) and node.this.is_string \
            and node.this.this.lower() == "0x":
        return node.expression
    return None


def _regexp_replace(node: exp.RegexpReplace) -> exp.Expression:
    """DuckDB's ``regexp_replace(s, p, r[, options])``: the first match unless option ``g`` (Spark's
    replaces every match: the first alone is the lazy prefix before it, kept as group 1)."""
    flags = _flags(node.args.get("modifiers"), "cgi", "regexp_replace")
    for arg in ("position", "occurrence"):
        if node.args.get(arg) is not None:
            raise ValueError(f"regexp_replace's {arg} has no translation")
    pattern = _literal(node.expression, "regexp_replace's pattern")
    replacement = _literal(node.args["replacement"], "regexp_replace's replacement")
    if "g" in flags:
        pattern = _scanning(pattern, flags)
        replacement = _java_replacement(replacement, pattern)
    else:
        pattern = f"{_case(flags)}^([\\s\\S]*?)({java_regex(pattern)})"
        replacement = "$1" + _java_replacement(replacement, pattern, group_offset=2, whole=2)
    return exp.RegexpReplace(this=node.this, expression=_string(pattern), replacement=_string(replacement))


# ---- statements --------------------------------------------------------------------------------------


def _bottom_up(node: exp.Expression, rewrite) -> exp.Expression:
    """``rewrite`` applied to every node, children first (``transform`` does not visit what it replaced)."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _bottom_up(value, rewrite))
        elif isinstance(value, list):
            node.set(key, [_bottom_up(v, rewrite) if isinstance(v, exp.Expression) else v for v in value])
    return rewrite(node)


def _temp_tables(node: exp.Expression) -> exp.Expression:
    """``create [or replace] temp table x as q`` → ``create or replace temporary view x as q``."""
    if (isinstance(node, exp.Create) and node.kind == "TABLE" and node.expression is not None
            and node.find(exp.TemporaryProperty)):
        return exp.Create(this=node.this.copy(), kind="VIEW", replace=True, expression=node.expression.copy(),
                          properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
    return node


def _union_by_name(node: exp.Expression) -> exp.Expression:
    """``a union [all] by name b`` (stars expanded) → positional, columns in DuckDB's order: a's, then
    b's others; a column one side lacks is null there."""
    if not (isinstance(node, exp.Union) and node.args.get("by_name")):
        return node
    left, right = node.left, node.right
    if not (isinstance(left, exp.Select) and isinstance(right, exp.Select)):
        raise ValueError("union by name: both sides must be plain selects for Spark")
    names = list(dict.fromkeys([*left.named_selects, *right.named_selects]))

    def lined_up(side: exp.Select) -> exp.Select:
        have = {e.alias_or_name: e for e in side.expressions}
        side = side.copy()
        side.set("expressions", [have[n].copy() if n in have else exp.alias_(exp.null(), n) for n in names])
        return side

    union = node.copy()
    union.set("this", lined_up(left))
    union.set("expression", lined_up(right))
    union.set("by_name", None)
    return union


def _semi_join_on(node: exp.Expression) -> exp.Expression:
    """``a semi|anti join b using (k)`` → ``… on a.k = b.k``: Spark puts the ``using`` columns first in
    ``select *``, DuckDB keeps the left side's order (a semi join's ``*`` is the left side's columns)."""
    if not isinstance(node, exp.Select):
        return node
    joins = node.args.get("joins") or []
    for i, join in enumerate(joins):
        if not join.args.get("using") or join.kind not in ("SEMI", "ANTI"):
            continue
        if i or node.args.get("from_") is None:
            raise ValueError("semi/anti join … using: only as the first join of a select, for Spark")
        left, right = node.args["from_"].this.alias_or_name, join.this.alias_or_name
        keys = [k.name for k in join.args["using"]]
        join.set("using", None)
        join.set("on", exp.and_(*(exp.column(k, left).eq(exp.column(k, right)) for k in keys)))
    return node


def _unhinted_cte(node: exp.Expression) -> exp.Expression:
    """A CTE without DuckDB's ``as [not] materialized`` (Spark's SQL has no such hint; its planner inlines a CTE)."""
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node = node.copy()
        node.set("materialized", None)
    return node


def _needs_columns(tree: exp.Expression) -> str | None:
    """What in ``tree`` Spark can only be given with the input tables' columns known."""
    if any(star.args.get("replace") for star in tree.find_all(exp.Star)):
        return "* replace"
    if any(u.args.get("by_name") and any(u.find_all(exp.Star)) for u in tree.find_all(exp.Union)):
        return "union by name over *"
    return None


def to_spark(sql: str, schema: Mapping[str, Mapping[str, str]] | None = None, *, pretty: bool = True) -> str:
    """DuckDB SQL (one or more statements) as Spark SQL (Spark 4.2, a session set with :data:`SPARK_CONF`).

    Args:
        sql: the rendered model or statement, in DuckDB's dialect.
        schema: table → {column: Spark type}, in column order, of the tables the SQL reads; needed
            (and then used to expand every star) when the SQL uses ``* replace`` or ``union by name``
            over ``*``.
    Raises:
        ValueError: the SQL needs ``schema`` and has none, or uses a DuckDB construct with no
            translation here.
    """
    statements = []
    for tree in sqlglot.parse(sql, read="duckdb"):
        if tree is None:
            continue
        tree = tree.transform(_semi_join_on).transform(_unhinted_cte)
        needs = _needs_columns(tree)
        if needs is not None:
            if schema is None:
                raise ValueError(f"{needs} needs the input tables' columns for Spark: pass schema=")
            body = tree.expression if isinstance(tree, exp.Create) else tree
            expanded = qualify(body, schema=MappingSchema(schema, dialect="spark"), dialect="duckdb",
                               quote_identifiers=False, validate_qualify_columns=False, expand_stars=True)
            if isinstance(tree, exp.Create):
                tree.set("expression", expanded)
            else:
                tree = expanded
        tree = _bottom_up(tree, _function).transform(_temp_tables).transform(_union_by_name)
        statements.append(tree.sql(dialect=_SparkSql, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE))
    return ";\n".join(statements)


# ---- the engines --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """An engine's SQL. The helpers write DuckDB's SQL (the models' language) for every engine, in the form the
    engine plans well where the two differ (:meth:`not_in_codes`): :meth:`to_engine` translates the rendered
    model as a whole."""

    name: DialectName

    def try_parse_timestamp(self, expr: str, fmt: str) -> str:
        """Timestamp parsed from ``expr`` with a strftime format; null when it does not parse."""
        return f"try_strptime({expr}, {_quote(fmt)})"

    def try_parse_date(self, expr: str, fmt: str) -> str:
        return f"cast({self.try_parse_timestamp(expr, fmt)} as date)"

    def full_match(self, expr: str, pattern: str) -> str:
        """True when the whole of ``expr`` matches the regex ``pattern``."""
        return f"regexp_full_match({expr}, {_quote(pattern)})"

    def contains_match(self, expr: str, pattern: str) -> str:
        """True when some part of ``expr`` matches the regex ``pattern``."""
        return f"regexp_matches({expr}, {_quote(pattern)})"

    def non_ascii(self, expr: str) -> str:
        """True when ``expr`` holds a character beyond ASCII: more bytes than characters (a length, where a
        regex search costs ~50 ns a value)."""
        return f"strlen({expr}) <> length({expr})"

    def strip(self, expr: str) -> str:
        """Remove leading and trailing whitespace, including the ideographic space."""
        return f"trim({expr}, {_quote(WHITESPACE)})"

    def edged(self, expr: str) -> str:
        """True when ``expr`` begins or ends with whitespace (what :meth:`strip` removes): prefix and suffix
        tests, which compare bytes and copy nothing (a third of trim()'s cost on values without any)."""
        return "(" + " or ".join([f"starts_with({expr}, {_quote(c)})" for c in WHITESPACE]
                                 + [f"ends_with({expr}, {_quote(c)})" for c in WHITESPACE]) + ")"

    def remove_all(self, expr: str, pattern: str) -> str:
        """Delete every match of ``pattern`` in ``expr``."""
        return f"regexp_replace({expr}, {_quote(pattern)}, '', 'g')"

    def not_in_codes(self, expr: str, table: str) -> str:
        """True when ``expr`` (not null where this is used) is none of the ``code`` column of ``table`` (never
        null). DuckDB: ``not in`` the table (a hash mark join). Spark: ``not exists`` with the equality — Spark
        plans an IN subquery inside a projection (a rule's ``case when`` in the checked model) as a null-aware
        existence join, a nested loop over every code for every row, and ``not exists`` as a hash join; in
        DuckDB that correlated ``not exists`` costs a fifth more than ``not in``."""
        if self.name == "spark":
            return f"not exists (select 1 from {table} as codes where codes.code = {expr})"
        return f"{expr} not in (select code from {table})"

    def excel_serial_to_date(self, expr: str) -> str:
        """Excel's day number (1900 date system) as a date."""
        return f"cast(date '1899-12-30' + cast(cast({expr} as double) as integer) as date)"

    def date_literal(self, value) -> str:
        return f"date '{value.isoformat()}'"

    def to_engine(self, sql: str, schema: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """The rendered model (DuckDB dialect) in this engine's dialect (``schema``: see :func:`to_spark`)."""
        if self.name == "duckdb":
            return sql
        return to_spark(sql, schema)


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


def dialect(name: DialectName) -> Dialect:
    return {"duckdb": DUCKDB, "spark": SPARK}[name]
