"""The SensorThings query options ($filter, $orderby, $top, $skip, $count, $select, $expand), parsed.

The standard borrows them from OData 4. This module only turns the text into small trees and
checks them; `entities.py` evaluates a filter over the registry's entities in Python and
`sql.py` turns one over Observations into a parameterised WHERE clause, so a wrong option is
refused the same way (a `QueryError`, answered 400) whichever set it is aimed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_TOP = 100
MAX_TOP = 10_000
MAX_SKIP = 2**62  # within a database's integer
MAX_DEPTH = 40  # nesting of $filter expressions and $expand options: a bound on the parser's recursion

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
ARITHMETIC = ("add", "sub", "mul", "div", "mod")
# name -> number of arguments. String functions are evaluated in Python only (on the registry's sets).
FUNCTIONS = {"substringof": 2, "contains": 2, "startswith": 2, "endswith": 2, "tolower": 1, "toupper": 1, "length": 1,
             "trim": 1, "concat": 2, "indexof": 2, "year": 1, "month": 1, "day": 1, "hour": 1, "minute": 1, "second": 1,
             "round": 1, "floor": 1, "ceiling": 1}


class QueryError(ValueError):
    """A query option the server cannot read or does not support: the message says which and why."""


# -- $filter expressions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, float, bool, None or an aware datetime


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]  # e.g. ("Datastream", "Thing", "name"); "@iot.id" and "id" both name the id

    def __str__(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Binary:
    op: str  # a comparison, an arithmetic operator, "and" or "or"
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    operand: Any


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*')
    | (?P<name>[@A-Za-z_][\w.@]*(?:/[@A-Za-z_$][\w.@]*)*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant with a time zone (SensorThings times always carry one)."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{text!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise QueryError(f"the time {text!r} has no time zone (add Z or +09:00)")
    return t


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"$filter: cannot read {text[pos:pos + 20].strip()!r} (at character {pos + 1})")
        pos = m.end()
        kind = m.lastgroup
        raw = m.group(kind)  # type: ignore[arg-type]
        if kind == "datetime":
            out.append(("lit", parse_time(raw)))
        elif kind == "number":
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(number, int) and abs(number) >= 2**63:  # beyond a database integer: compare as a float
                number = float(number)
            out.append(("lit", number))
        elif kind == "string":
            out.append(("lit", raw[1:-1].replace("''", "'")))
        elif kind == "name":
            low = raw.lower()
            if low in ("true", "false"):
                out.append(("lit", low == "true"))
            elif low == "null":
                out.append(("lit", None))
            elif low in COMPARISONS or low in ARITHMETIC or low in ("and", "or", "not"):
                out.append(("op", low))
            else:
                out.append(("name", raw))
        else:
            out.append(("punct", raw))
    return out


class _Parser:
    """Recursive descent over OData's precedence: or < and < not < comparison < add/sub < mul/div/mod."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise QueryError(f"$filter {self.text!r} ends too early")
        self.i += 1
        return tok

    def expect(self, punct: str) -> None:
        tok = self.take()
        if tok != ("punct", punct):
            raise QueryError(f"$filter: expected {punct!r} but found {tok[1]!r}")

    def parse(self) -> Any:
        if not self.toks:
            raise QueryError("$filter is empty")
        node = self.or_()
        if self.peek() is not None:
            raise QueryError(f"$filter: unexpected {self.peek()[1]!r} after a complete expression")  # type: ignore[index]
        return node

    def _binary(self, ops: tuple[str, ...], sub: Any) -> Any:
        node = sub()
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in ops:
            self.take()
            node = Binary(tok[1], node, sub())
        return node

    def or_(self) -> Any:
        return self._binary(("or",), self.and_)

    def and_(self) -> Any:
        return self._binary(("and",), self.not_)

    def not_(self) -> Any:
        if self.peek() == ("op", "not"):
            self.take()
            return Not(self.not_())
        return self.comparison()

    def comparison(self) -> Any:
        node = self.additive()
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in COMPARISONS:
            self.take()
            node = Binary(tok[1], node, self.additive())
        return node

    def additive(self) -> Any:
        return self._binary(("add", "sub"), self.multiplicative)

    def multiplicative(self) -> Any:
        return self._binary(("mul", "div", "mod"), self.primary)

    def primary(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError("$filter is nested too deeply")
        try:
            kind, value = self.take()
            if kind == "lit":
                return Literal(value)
            if kind == "punct" and value == "(":
                node = self.or_()
                self.expect(")")
                return node
            if kind == "name":
                if self.peek() == ("punct", "("):
                    return self.call(value)
                return Path(tuple(value.split("/")))
            raise QueryError(f"$filter: unexpected {value!r}")
        finally:
            self.depth -= 1

    def call(self, name: str) -> Call:
        low = name.lower()
        if low not in FUNCTIONS:
            raise QueryError(f"$filter: the function {name!r} is not supported; supported: {', '.join(sorted(FUNCTIONS))}")
        self.expect("(")
        args = [self.or_()]
        while self.peek() == ("punct", ","):
            self.take()
            args.append(self.or_())
        self.expect(")")
        if len(args) != FUNCTIONS[low]:
            raise QueryError(f"$filter: {low}() takes {FUNCTIONS[low]} argument(s), not {len(args)}")
        return Call(low, tuple(args))


def parse_filter(text: str) -> Any:
    return _Parser(text).parse()


def paths_of(node: Any) -> list[Path]:
    """Every property path an expression reads."""
    if isinstance(node, Path):
        return [node]
    if isinstance(node, Binary):
        return paths_of(node.left) + paths_of(node.right)
    if isinstance(node, Not):
        return paths_of(node.operand)
    if isinstance(node, Call):
        return [p for a in node.args for p in paths_of(a)]
    return []


# -- the options together ----------------------------------------------------------------------------
@dataclass
class Options:
    """The query options of one request or of one $expand item."""

    filter: Any = None
    orderby: list[tuple[Path, bool]] = field(default_factory=list)  # (path, descending)
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    select: list[str] | None = None
    expand: dict[str, Options] = field(default_factory=dict)  # navigation property -> its options
    raw: dict[str, str] = field(default_factory=dict)  # the options as written (for an expanded collection's nextLink)


def _int(name: str, text: str, low: int, high: int | None = None) -> int:
    try:
        n = int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer, not {text!r}") from None
    if n < low or (high is not None and n > high):
        raise QueryError(f"{name} must be between {low} and {high}" if high is not None else f"{name} must be at least {low}")
    return n


def _split(text: str, sep: str) -> list[str]:
    """Split at `sep` outside parentheses and quotes."""
    out, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(text):
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"unbalanced ')' in {text!r}")
        elif not quoted and depth == 0 and c == sep:
            out.append(text[start:i])
            start = i + 1
    if depth or quoted:
        raise QueryError(f"unbalanced parentheses or quotes in {text!r}")
    out.append(text[start:])
    return [s.strip() for s in out]


def parse_orderby(text: str) -> list[tuple[Path, bool]]:
    keys = []
    for item in _split(text, ","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"$orderby: {item!r} is not 'property [asc|desc]'")
        if not re.fullmatch(r"[@A-Za-z_][\w.@]*(/[@A-Za-z_][\w.@]*)*", words[0]):
            raise QueryError(f"$orderby: {words[0]!r} is not a property path")
        keys.append((Path(tuple(words[0].split("/"))), len(words) == 2 and words[1].lower() == "desc"))
    return keys


def parse_options(params: dict[str, str], *, depth: int = 0, where: str = "") -> Options:
    """Options from `$name -> value` (a request's query string, or an $expand item's parentheses)."""
    if depth > 5:
        raise QueryError("$expand is nested too deeply (at most 5 levels)")
    opts = Options(raw=dict(params))
    for name, value in params.items():
        label = f"{name}{where}"
        if name == "$filter":
            opts.filter = parse_filter(value)
        elif name == "$orderby":
            opts.orderby = parse_orderby(value)
        elif name == "$top":
            opts.top = _int(label, value, 0, MAX_TOP)
        elif name == "$skip":
            opts.skip = _int(label, value, 0, MAX_SKIP)
        elif name == "$count":
            if value not in ("true", "false"):
                raise QueryError(f"{label} must be true or false, not {value!r}")
            opts.count = value == "true"
        elif name == "$select":
            opts.select = [s for s in (x.strip() for x in value.split(",")) if s]
            if not opts.select:
                raise QueryError(f"{label} is empty")
        elif name == "$expand":
            opts.expand = parse_expand(value, depth)
        elif name == "$resultFormat":
            raise QueryError("$resultFormat (the dataArray extension) is not supported")
        elif name.startswith("$"):
            raise QueryError(f"unknown query option {name!r}; supported: $filter, $orderby, $top, $skip, $count, $select, $expand")
    return opts


def parse_expand(text: str, depth: int = 0) -> dict[str, Options]:
    """`Datastreams/Observations($top=1;$orderby=phenomenonTime desc),Locations` -> a tree of Options.
    A path `A/B(opts)` means: expand A, and within it B with opts (OData's nested form
    `A($expand=B(opts))` is read too)."""
    out: dict[str, Options] = {}
    for item in _split(text, ","):
        if not item:
            raise QueryError(f"$expand: empty item in {text!r}")
        m = re.fullmatch(r"([A-Za-z]+(?:/[A-Za-z]+)*)\s*(?:\((.*)\))?", item, re.S)
        if m is None:
            raise QueryError(f"$expand: cannot read {item!r}")
        names, inner = m.group(1).split("/"), m.group(2)
        params: dict[str, str] = {}
        if inner is not None and inner.strip():
            for part in _split(inner, ";"):
                key, eq, value = part.partition("=")
                if not eq or not key.strip().startswith("$"):
                    raise QueryError(f"$expand: {part!r} in {item!r} is not '$option=value'")
                params[key.strip()] = value.strip()
        leaf = parse_options(params, depth=depth + len(names), where=f" (in $expand={names[-1]})")
        level = out
        for name in names[:-1]:
            level = level.setdefault(name, Options()).expand
        if names[-1] in level:  # A/B and A(...) in one request: keep both
            merged = level[names[-1]]
            merged.expand.update(leaf.expand)
            if params:
                leaf.expand = merged.expand
                level[names[-1]] = leaf
        else:
            level[names[-1]] = leaf
    return out
