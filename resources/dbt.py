"""dbt, as Dagster runs it: one project, the engine picked by FINCDP_WAREHOUSE.

DuckDB and ClickHouse run on the main environment's dbt (1.11); MySQL runs on the isolated
dbt-core 1.7 + dbt-mysql environment through `dbt_executable`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from fincdp.settings import REPO_ROOT
from fincdp.tenants import Tenant

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
# Materializing a few models from the UI must not run the tests of models left out (a relationships
# test of an unselected child fails on its missing table); tests whose parents are selected or upstream
# of the selection still run. dagster-dbt passes the environment on to dbt.
os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
DBT_MYSQL_EXECUTABLE = REPO_ROOT / ".venv-dbt-mysql" / "bin" / "dbt"
# The dbt installed beside this interpreter: the environment's bin folder need not be on PATH.
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"


def warehouse_engine() -> str:
    return os.environ.get("FINCDP_WAREHOUSE", "duckdb")


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=warehouse_engine())


def dbt_vars(tenant: Tenant, business_date) -> dict:
    """What a dbt run needs to know of its partition: the tenant's storage names and the date."""
    engine = warehouse_engine()
    return {
        "tenant": tenant.id,
        "business_date": business_date.isoformat(),
        # DuckDB: a file per tenant, layers as schemas inside it. Others: <prefix>_<layer> databases.
        "schema_prefix": "" if engine == "duckdb" else f"{tenant.database_prefix}_",
        "duckdb_path": str(tenant.duckdb_path),
    }


def dbt_resource() -> DbtCliResource:
    engine = warehouse_engine()
    executable = str(DBT_MYSQL_EXECUTABLE if engine == "mysql" else DBT_EXECUTABLE)
    if engine == "mysql" and not Path(executable).exists():
        raise FileNotFoundError(f"FINCDP_WAREHOUSE=mysql needs the dbt-mysql environment at {executable}; "
                                "run `make setup-mysql`")
    return DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), target=engine,
                          dbt_executable=executable)
