"""The `$filter` / `$orderby` expression language of SensorThings (OData 4 subset,
docs/sensorthings.md#query-options): a lexer and a Pratt parser producing a typed AST. Pure:
syntax only; what the names mean is checked when the AST is compiled (`sta.compile`).

Errors raise `BadQuery` with the position and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from civicair.core.errors import BadQuery

# --- AST ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    kind: str  # string number bool null datetime interval date duration geometry
    value: Any


@dataclass(frozen=True)
class Path:
    segments: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary:
    op: str  # not | neg
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Literal | Path | Call | Unary | Binary

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
ARITHMETIC = ("add", "sub", "mul", "div", "mod")
BINDING = {"or": 1, "and": 2, "eq": 3, "ne": 3, "gt": 4, "ge": 4, "lt": 4, "le": 4,
           "add": 5, "sub": 5, "mul": 6, "div": 6, "mod": 6}

# --- lexer --------------------------------------------------------------------------------------

_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})"
_TOKEN = re.compile(rf"""
    (?P<ws>\s+)
  | (?P<interval>{_DATETIME}/{_DATETIME})
  | (?P<datetime>{_DATETIME})
  | (?P<date>\d{{4}}-\d{{2}}-\d{{2}})(?![\dT:])
  | (?P<typed>(?:geography|geometry|duration)'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_@$][A-Za-z0-9_.@]*)
  | (?P<punct>[(),/-])
""", re.VERBOSE)
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def parse_datetime(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"not a valid date-time: {text[:40]!r}") from None
    return t.astimezone(UTC)


def tokens(text: str, what: str = "$filter") -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise BadQuery(f"{what}: unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


def _literal(tok: Token, what: str) -> Literal:
    text = tok.text
    if tok.kind == "string":
        return Literal("string", text[1:-1].replace("''", "'"))
    if tok.kind == "number":
        if re.fullmatch(r"\d+", text):
            return Literal("number", int(text))
        return Literal("number", float(text))
    if tok.kind == "datetime":
        return Literal("datetime", parse_datetime(text))
    if tok.kind == "interval":
        a, b = text.split("/")
        start, end = parse_datetime(a), parse_datetime(b)
        if end < start:
            raise BadQuery(f"{what}: interval {text!r} ends before it starts")
        return Literal("interval", (start, end))
    if tok.kind == "date":
        try:
            return Literal("date", datetime.fromisoformat(text).date())
        except ValueError:
            raise BadQuery(f"{what}: not a valid date {text!r} at position {tok.pos}") from None
    prefix, _, rest = text.partition("'")
    body = rest[:-1].replace("''", "'")
    if prefix == "duration":
        m = _DURATION.match(body)
        if not m or body in ("P", "PT"):
            raise BadQuery(f"{what}: not an ISO 8601 duration {body!r} at position {tok.pos}")
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return Literal("duration", timedelta(days=d, hours=h, minutes=mi, seconds=s))
    return Literal("geometry", body)


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.what = text, what
        self.toks = tokens(text, what)
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Token, problem: str) -> BadQuery:
        near = repr(tok.text) if tok.kind != "end" else "the end"
        return BadQuery(f"{self.what}: {problem} at position {tok.pos} (near {near})")

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.text != text:
            raise self.fail(tok, f"expected {text!r}")

    def expression(self, power: int = 0) -> Node:
        left = self.prefix()
        while True:
            tok = self.peek()
            op = tok.text.lower() if tok.kind == "name" else ""
            bp = BINDING.get(op)
            if bp is None or bp <= power:
                return left
            self.next()
            left = Binary(op, left, self.expression(bp))

    def prefix(self) -> Node:
        tok = self.next()
        if tok.kind == "punct" and tok.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if tok.kind == "punct" and tok.text == "-":
            operand = self.expression(7)
            if isinstance(operand, Literal) and operand.kind == "number":
                return Literal("number", -operand.value)
            return Unary("neg", operand)
        if tok.kind in ("string", "number", "datetime", "interval", "date", "typed"):
            return _literal(tok, self.what)
        if tok.kind != "name":
            raise self.fail(tok, "expected a value, a property or a function")
        word = tok.text
        low = word.lower()
        if low == "not":  # binds like SQL's NOT: over a comparison (a negated number is no condition)
            return Unary("not", self.expression(BINDING["and"]))
        if low in ("true", "false"):
            return Literal("bool", low == "true")
        if low == "null":
            return Literal("null", None)
        if low in BINDING:
            raise self.fail(tok, f"operator {word!r} needs a left operand")
        if self.peek().text == "(":
            self.next()
            args: list[Node] = []
            if self.peek().text != ")":
                args.append(self.expression())
                while self.peek().text == ",":
                    self.next()
                    args.append(self.expression())
            self.expect(")")
            return Call(low, tuple(args))
        segments = [word]
        while self.peek().text == "/":
            self.next()
            seg = self.next()
            if seg.kind != "name":
                raise self.fail(seg, "expected a property name after '/'")
            segments.append(seg.text)
        return Path(tuple(segments))


def parse_filter(text: str) -> Node:
    p = _Parser(text, "$filter")
    if p.peek().kind == "end":
        raise p.fail(p.peek(), "empty expression")
    node = p.expression()
    if p.peek().kind != "end":
        raise p.fail(p.peek(), "unexpected text after the expression")
    return node


@dataclass(frozen=True)
class OrderItem:
    expr: Node
    descending: bool


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    p = _Parser(text, "$orderby")
    items: list[OrderItem] = []
    while True:
        if p.peek().kind == "end":
            raise p.fail(p.peek(), "expected an expression")
        expr = p.expression()
        desc = False
        tok = p.peek()
        if tok.kind == "name" and tok.text.lower() in ("asc", "desc"):
            desc = p.next().text.lower() == "desc"
        items.append(OrderItem(expr, desc))
        tok = p.next()
        if tok.kind == "end":
            return tuple(items)
        if tok.text != ",":
            raise p.fail(tok, "expected ',', 'asc' or 'desc'")


def paths_of(node: Node) -> list[Path]:
    """Every property path in an expression."""
    if isinstance(node, Path):
        return [node]
    if isinstance(node, Call):
        return [p for a in node.args for p in paths_of(a)]
    if isinstance(node, Unary):
        return paths_of(node.operand)
    if isinstance(node, Binary):
        return paths_of(node.left) + paths_of(node.right)
    return []


def calls_of(node: Node) -> list[Call]:
    if isinstance(node, Call):
        return [node] + [c for a in node.args for c in calls_of(a)]
    if isinstance(node, Unary):
        return calls_of(node.operand)
    if isinstance(node, Binary):
        return calls_of(node.left) + calls_of(node.right)
    return []


def conjuncts(node: Node) -> list[Node]:
    """The top-level `and` terms of a filter."""
    if isinstance(node, Binary) and node.op == "and":
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]
