"""SensorThings resource paths (docs/sensorthings.md#resource-paths): `Things`, `Things(1)`,
`Things(1)/Datastreams`, `Datastreams(3)/Thing/Locations`, `Things(1)/name`,
`Things(1)/name/$value`, `Things(1)/Datastreams/$ref`. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from civicair.core.errors import BadQuery, NotFound
from civicair.sta.schema import NAVS, PROPERTIES

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((.*)\))?$")


@dataclass(frozen=True)
class Step:
    name: str  # an entity set, or a navigation property of the previous step
    key: int | None  # an entity key


@dataclass(frozen=True)
class ResourcePath:
    steps: tuple[Step, ...]
    sets: tuple[str, ...]  # the entity set of each step
    prop: str | None = None  # …/name
    value: bool = False  # …/$value
    ref: bool = False  # …/$ref


def _key(text: str, segment: str) -> int:
    if not re.fullmatch(r"\d{1,19}", text):
        raise NotFound(f"no entity {segment!r}: keys are integers")
    return int(text)


def parse_path(path: str) -> ResourcePath:
    parts = [p for p in path.strip("/").split("/")]
    if not parts or parts == [""]:
        raise BadQuery("empty resource path")
    steps: list[Step] = []
    sets: list[str] = []
    prop: str | None = None
    value = ref = False
    for i, part in enumerate(parts):
        if part == "$ref":
            if i != len(parts) - 1 or prop is not None:
                raise BadQuery("$ref must end the path, after an entity or a collection")
            ref = True
            continue
        if part == "$value":
            if i != len(parts) - 1 or prop is None:
                raise BadQuery("$value must end the path, after a property")
            value = True
            continue
        if prop is not None:
            raise BadQuery(f"nothing can follow the property {prop!r} but $value")
        m = _SEGMENT.match(part)
        if m is None:
            raise NotFound(f"no resource {part[:60]!r}")
        name, key = m.group(1), m.group(2)
        if not steps:
            if name not in PROPERTIES:
                raise NotFound(f"no entity set {name!r}; the sets are {', '.join(PROPERTIES)}")
            steps.append(Step(name, _key(key, part) if key is not None else None))
            sets.append(name)
            continue
        current = sets[-1]
        last = steps[-1]
        nav = NAVS[current].get(name)
        single = last.key is not None or (len(steps) > 1 and not NAVS[sets[-2]][last.name].many)
        if nav is not None:
            if not single:
                raise BadQuery(f"{name} must follow a single entity, e.g. {current}(1)/{name}")
            if key is not None and not nav.many:
                raise BadQuery(f"{name} is a single entity: no key")
            steps.append(Step(name, _key(key, part) if key is not None else None))
            sets.append(nav.target)
            continue
        if key is None and name in PROPERTIES[current] and single:
            prop = name
            continue
        raise NotFound(f"{current} have no property or navigation {name!r}")
    return ResourcePath(tuple(steps), tuple(sets), prop, value, ref)
