"""Benchmarks run by `make bench`; results go to docs/benchmarks.md.

Not collected by pytest (no test_ files): speed is measured here, never asserted in tests.
"""
