"""Runners: one contract (:mod:`mlrepro.runners.base`), one module per target, looked up by name in one table
(:mod:`mlrepro.runners.targets`). Importing this package imports nothing else."""
