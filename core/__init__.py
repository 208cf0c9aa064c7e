"""civicair core: settings, database, tables, domain types, CLI."""
