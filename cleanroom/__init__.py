"""cleanroom: a privacy-preserving data clean room for car brands, dealers and captive finance.

Data flows one way: prepare -> ingest -> store -> engine -> dp -> budget/audit -> gateway ->
client/cli/reports. See docs/explanation/architecture.md.
"""

__version__ = "0.1.0"
