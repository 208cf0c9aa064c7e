"""Ingest: normalisation, plausibility flags, batch writer, dead letters, rollups."""
