"""The feed component."""
