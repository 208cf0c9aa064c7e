"""The open-data read model: every public surface (API, files, web pages, SensorThings) reads
through it, so the privacy rules exist once (docs/privacy.md)."""
