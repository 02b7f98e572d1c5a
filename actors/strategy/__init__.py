"""The strategy component."""
