"""Benchmarks: scripts that print figures and the machine they ran on. Not tests."""
