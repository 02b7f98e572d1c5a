"""The strategy component, and the public strategy API (see :mod:`actors.strategy.api`)."""

from actors.strategy.api import Bar, Order, Strategy

__all__ = ["Bar", "Order", "Strategy"]
