"""The demo (`civicair up --demo`): simulated sensors and reference stations; a tool, not product."""
