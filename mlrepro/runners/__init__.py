"""Runners: one contract (launch, wait, logs, fetch results, cancel), one module per target."""
