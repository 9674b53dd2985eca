"""Seeded demo data: a realistic Chinese B2B data set per tenant (see docs/demo-data.md)."""
from fincdp.demo.generate import generate, generate_tenant

__all__ = ["generate", "generate_tenant"]
