"""mlrepro: reproducible MLPerf-style benchmark runs from a hardware/software profile."""

__version__ = "0.1.0"
