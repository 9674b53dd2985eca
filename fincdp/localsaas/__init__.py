"""Local HTTP servers that speak the real API shapes of the SaaS systems FinCDP pulls from.

They serve a generated data set (see docs/demo-data.md) and can inject the faults the real services
show (token expiry, rate limits, 5xx), so the clients are tested against real HTTP, not mocks.
"""
