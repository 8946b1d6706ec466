"""One-off studies whose results are committed: design comparison, table search, ulp study, speed probes,
refactoring checks."""
