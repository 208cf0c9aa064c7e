"""open_export package."""
