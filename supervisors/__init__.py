"""Supervision: stable addresses, supervised actors, supervisors and the tree built per mode."""
