"""FinCDP platform library: settings, tenants, personal-data protection, the `fincdp` command,
the demo data generator and the local stand-ins for external SaaS APIs."""
