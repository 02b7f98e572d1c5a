"""The executor component."""
