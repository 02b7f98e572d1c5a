"""The control component."""
