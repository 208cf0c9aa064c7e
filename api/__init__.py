"""The HTTP API (FastAPI): public open data, partner, volunteer and push routers over the read
model; `civicair.api.app.create_app(settings, db)` builds it."""
