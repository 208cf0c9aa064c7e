"""SensorThings query options (`$filter $expand $select $orderby $top $skip $count $skiptoken
$resultFormat`, docs/sensorthings.md#query-options) parsed into a frozen `Query`, nested for
`$expand`. Pure; errors raise `BadQuery` naming the option."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from civicair.core.errors import BadQuery
from civicair.sta.expression import Node, OrderItem, parse_filter, parse_orderby

MAX_TOP = 1000
DEFAULT_TOP = 100
MAX_EXPAND_DEPTH = 4
OPTIONS = ("$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count", "$skiptoken", "$resultFormat")


@dataclass(frozen=True)
class Expand:
    name: str  # a navigation property
    query: Query


@dataclass(frozen=True)
class Query:
    filter: Node | None = None
    filter_text: str = ""
    orderby: tuple[OrderItem, ...] = ()
    orderby_text: str = ""
    top: int | None = None
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] = ()
    expand: tuple[Expand, ...] = field(default_factory=tuple)
    skiptoken: str | None = None
    result_format: str | None = None
    raw: tuple[tuple[str, str], ...] = ()  # the options as given (nextLinks repeat them)


def _int(option: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise BadQuery(f"{option} must be a non-negative integer, got {text[:40]!r}")
    return int(text)


def split_top(text: str, separators: str, option: str) -> list[str]:
    """`text` split at the separators outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise BadQuery(f"{option}: unbalanced ')' at position {i}")
        elif ch in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise BadQuery(f"{option}: unbalanced {'quote' if quote else 'parenthesis'} in {text[:80]!r}")
    parts.append(text[start:])
    return parts


def _expand(text: str, depth: int) -> tuple[Expand, ...]:
    if depth > MAX_EXPAND_DEPTH:
        raise BadQuery(f"$expand: nested deeper than {MAX_EXPAND_DEPTH} levels")
    out: list[Expand] = []
    for item in split_top(text, ",", "$expand"):
        item = item.strip()
        if not item:
            raise BadQuery("$expand: empty item")
        head, paren, rest = item.partition("(")
        if paren and not rest.endswith(")"):
            raise BadQuery(f"$expand: {item[:60]!r} must end with ')'")
        inner = rest[:-1] if paren else ""
        names = [n.strip() for n in head.split("/")]
        if not all(n.isidentifier() for n in names):
            raise BadQuery(f"$expand: {head[:60]!r} is not a navigation path")
        if depth + len(names) - 1 > MAX_EXPAND_DEPTH:
            raise BadQuery(f"$expand: nested deeper than {MAX_EXPAND_DEPTH} levels")
        pairs: list[tuple[str, str]] = []
        for opt in split_top(inner, ";", "$expand") if inner.strip() else []:
            key, eq, value = opt.strip().partition("=")
            if not eq:
                raise BadQuery(f"$expand: option {opt[:40]!r} has no '='")
            pairs.append((key.strip(), value))
        query = parse_query(pairs, depth + len(names))
        for name in reversed(names[1:]):
            query = Query(expand=(Expand(name, query),))
        out.append(Expand(names[0], query))
    return tuple(out)


def parse_query(pairs: Iterable[tuple[str, str]], depth: int = 1) -> Query:
    """Query options from decoded (name, value) pairs; other parameters are ignored, unknown
    system options (`$…`) and repeated ones are errors."""
    seen: dict[str, str] = {}
    for key, value in pairs:
        if not key.startswith("$"):
            continue
        if key not in OPTIONS:
            raise BadQuery(f"unknown query option {key[:40]!r}; supported: {', '.join(OPTIONS)}")
        if key in seen:
            raise BadQuery(f"query option {key} given twice")
        seen[key] = value
    q: dict[str, object] = {"raw": tuple(seen.items())}
    if (text := seen.get("$filter")) is not None:
        q["filter"], q["filter_text"] = parse_filter(text), text
    if (text := seen.get("$orderby")) is not None:
        q["orderby"], q["orderby_text"] = parse_orderby(text), text
    if (text := seen.get("$top")) is not None:
        q["top"] = _int("$top", text)
    if (text := seen.get("$skip")) is not None:
        q["skip"] = _int("$skip", text)
    if (text := seen.get("$count")) is not None:
        if text not in ("true", "false"):
            raise BadQuery(f"$count must be true or false, got {text[:40]!r}")
        q["count"] = text == "true"
    if (text := seen.get("$select")) is not None:
        names = tuple(n.strip() for n in text.split(","))
        if not all(n and (n.isidentifier() or n == "@iot.id") for n in names):
            raise BadQuery(f"$select: {text[:60]!r} is not a list of property names")
        q["select"] = tuple("id" if n == "@iot.id" else n for n in names)
    if (text := seen.get("$expand")) is not None:
        q["expand"] = _expand(text, depth)
    if (text := seen.get("$skiptoken")) is not None:
        q["skiptoken"] = text
    if (text := seen.get("$resultFormat")) is not None:
        if text != "dataArray":
            raise BadQuery(f"$resultFormat: only dataArray is supported, got {text[:40]!r}")
        q["result_format"] = text
    return Query(**q)  # type: ignore[arg-type]
