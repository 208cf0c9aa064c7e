"""HTTP push endpoints (sensor.community firmware, civicair JSON), authenticated by device token."""

from civicair.api.push.endpoints import router

__all__ = ["router"]
