"""Open data files (CSV, Parquet, GeoJSON), frictionless datapackage and DCAT-AP catalogue."""

from open_export.catalog import build_catalogue
from open_export.datasets import DEFAULT_DATASETS, Column, Dataset, select_datasets
from open_export.service import ExportReport, export_dir, run_export

__all__ = ["DEFAULT_DATASETS", "Column", "Dataset", "ExportReport", "build_catalogue", "export_dir",
           "run_export", "select_datasets"]
