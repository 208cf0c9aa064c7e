"""Operator endpoints (partner API keys holding the `operator` scope)."""
