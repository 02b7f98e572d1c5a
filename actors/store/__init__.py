"""The store component."""
