"""The model component."""
