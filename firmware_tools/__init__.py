"""firmware_tools package."""
