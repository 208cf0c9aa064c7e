"""Network-server and sensor message formats → `core.domain.Uplink` (pure)."""
