"""The publication workflow's clock (docs/privacy.md#publication): which first-reading times are
past the QA window now. The rule itself is one SQL expression, `statements.established`, that
every public statement uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civicair.core.settings import Settings

STATES = ("pending", "approved", "withheld")


def qa_cutoff(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Devices whose first reading was stored at or before this time have passed their QA
    window; None when only an operator's approval publishes a device."""
    if settings.publication_requires_approval:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=settings.publication_qa_days)


def qa_ends_at(settings: Settings, first_received_at: datetime | None) -> datetime | None:
    """When a pending device's QA window ends (None: it has sent nothing yet, or only an operator
    can publish it)."""
    if first_received_at is None or settings.publication_requires_approval:
        return None
    return first_received_at + timedelta(days=settings.publication_qa_days)
