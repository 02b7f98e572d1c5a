"""The buffer component."""
