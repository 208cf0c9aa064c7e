"""Reading and validating the bundle's ESPHome files: PyYAML with ESPHome's tags kept as
(tag, value), and ESPHome's own `esphome config` from .venv-esphome (`make esphome`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ESPHOME = REPO / ".venv-esphome" / "bin" / "esphome"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, tag, node: (tag, loader.construct_scalar(node)))


def load(text: str | bytes) -> dict[str, Any]:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def esphome_config(folder: Path, name: str = "esphome.yaml") -> subprocess.CompletedProcess[str]:
    """`esphome config` on `folder/name` (offline: it validates, it does not compile)."""
    if not ESPHOME.exists():
        pytest.fail(f"{ESPHOME} is missing: run `make esphome` (make test does)")
    return subprocess.run([str(ESPHOME), "config", name], cwd=folder, capture_output=True, text=True, timeout=120)
