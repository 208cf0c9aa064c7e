"""`civicair bench api` (placeholder replaced below)."""
