"""Why a device has its status: reason codes with a level and a plain-language text, built by the
pure modules and stored with the status, so reports and the API render them (pure)."""

from __future__ import annotations

from dataclasses import dataclass

INSUFFICIENT, UNRELIABLE, SUSPECT, NOTE = "insufficient_data", "unreliable", "suspect", "note"
LEVELS = (UNRELIABLE, SUSPECT, INSUFFICIENT, NOTE)  # worst first


@dataclass(frozen=True)
class Reason:
    code: str  # stable identifier, e.g. "no_skill", "stuck"
    level: str  # unreliable | suspect | insufficient_data | note
    text: str  # one sentence an engineer can forward

    def as_dict(self, quantity: str | None = None) -> dict[str, str]:
        d = {"code": self.code, "level": self.level, "text": self.text}
        if quantity is not None:
            d["quantity"] = quantity
        return d


def status_of(reasons: tuple[Reason, ...]) -> str:
    """The worst level among the reasons; `reliable` when none is a problem."""
    levels = {r.level for r in reasons}
    for level in (INSUFFICIENT, UNRELIABLE, SUSPECT):
        if level in levels:
            return level
    return "reliable"
