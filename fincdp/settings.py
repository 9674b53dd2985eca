"""Where FinCDP keeps its state. Everything derives from two environment variables so that the demo,
the tests and production differ only in environment values."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """FINCDP_HOME: warehouse files, keys, drop folders and the Dagster instance (default ./.fincdp)."""
    return Path(os.environ.get("FINCDP_HOME") or REPO_ROOT / ".fincdp").resolve()


def tenants_file() -> Path:
    """FINCDP_TENANTS: the tenants configuration (default tenants.yaml at the repository root)."""
    return Path(os.environ.get("FINCDP_TENANTS") or REPO_ROOT / "tenants.yaml").resolve()


def warehouse_dir() -> Path:
    return home() / "warehouse"


def keys_dir() -> Path:
    return home() / "keys"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or home() / "dagster").resolve()
