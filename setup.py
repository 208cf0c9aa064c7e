"""Packaging: the repository's top-level folders become the subpackages of the one import name
`civicair` (`gateway/` → `civicair.gateway`, …); `civicair/` holds the composition root and the
root CLI. Every other piece of metadata is in pyproject.toml."""

from setuptools import find_packages, setup

FOLDERS = ("core", "gateway", "ingest", "calibration", "readmodel", "api", "open_export", "firmware_tools",
           "migrations", "web", "demo", "bench", "sta")

package_dir = {"civicair": "civicair"}
packages = ["civicair"]
for folder in FOLDERS:
    package_dir[f"civicair.{folder}"] = folder
    packages += [f"civicair.{folder}"] + [f"civicair.{folder}.{sub}" for sub in find_packages(folder)]

setup(package_dir=package_dir, packages=packages)
