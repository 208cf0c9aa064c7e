"""Every public URL of the open data, from the settings (docs/open-data.md#public-urls). Pure.

All are built on `settings.public_base_url`, which follows where the API listens unless
CIVICAIR_PUBLIC_BASE_URL is set. The dataset and distribution URIs are the harvesters' keys (CKAN
matches datasets and resources on them): set the public URL before a portal first harvests.
"""

from __future__ import annotations

from civicair.core.settings import Settings


def base_url(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/")


def catalogue_uri(settings: Settings) -> str:
    return f"{base_url(settings)}/catalog"


def catalogue_url(settings: Settings, fmt: str = "jsonld") -> str:
    return f"{base_url(settings)}/catalog.{fmt}"


def dataset_uri(settings: Settings, dataset_id: str) -> str:
    return f"{base_url(settings)}/catalog/datasets/{dataset_id}"


def landing_page(settings: Settings, dataset_id: str) -> str:
    """civicair's own human page of a dataset (web/, `/datasets/{id}`)."""
    return f"{base_url(settings)}/datasets/{dataset_id}"


def portal_page(settings: Settings, dataset_id: str) -> str | None:
    """The dataset's page on the city's portal, when its slug there is configured
    (CIVICAIR_PORTAL_SLUGS): portals name harvested datasets from their titles."""
    slug = settings.portal_slugs.get(dataset_id)
    return f"{settings.portal_base_url.rstrip('/')}/{slug.strip('/')}" if slug else None


def dataset_page(settings: Settings, dataset_id: str) -> str:
    """Where a file or response of the dataset points people: the portal page when known, else
    civicair's own page."""
    return portal_page(settings, dataset_id) or landing_page(settings, dataset_id)


def file_url(settings: Settings, dataset_id: str, name: str) -> str:
    return f"{base_url(settings)}/exports/{dataset_id}/{name}"


def export_root_url(settings: Settings, name: str) -> str:
    return f"{base_url(settings)}/exports/{name}"
