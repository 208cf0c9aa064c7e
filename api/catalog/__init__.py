"""Catalogue and export-file routes: /catalog.jsonld, /catalog.ttl, /exports/..."""

from civicair.api.catalog.endpoints import install_links, router

__all__ = ["install_links", "router"]
