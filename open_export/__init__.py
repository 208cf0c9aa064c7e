"""Open data files (CSV, Parquet, GeoJSON), the frictionless datapackage and the DCAT-AP
catalogue, written from the read model."""
