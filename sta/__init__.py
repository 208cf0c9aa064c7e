"""SensorThings API (civicair.sta, issue 18)."""
