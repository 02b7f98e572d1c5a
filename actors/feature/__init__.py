"""The feature component."""
