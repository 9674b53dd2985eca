"""Analytics over the ADS layer: custom event funnels, paths, attribution, RFM, CLV and lifecycle.

Pure functions over pandas frames (tested on hand-made data); assets/analytics.py reads the
warehouse, calls them and writes `ads.*` tables. Settings: analytics.yaml (fincdp.analytics.config).
"""
