"""FastAPI application: public open data, partner and volunteer routers."""

from api.app import create_app

__all__ = ["create_app"]
