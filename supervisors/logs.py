"""Logging: loguru only, with pykka's stdlib records routed into it."""

from __future__ import annotations

import logging
import sys

from loguru import logger

__all__ = ["setup_logging"]


class _Intercept(logging.Handler):
    """Send stdlib logging records (pykka's crash tracebacks among them) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr at ``level``, with the actor name when a record has one."""
    logger.remove()
    logger.configure(extra={"actor": "-"})
    logger.add(
        sys.stderr, level=level.upper(), backtrace=False, diagnose=False,
        format="<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> <cyan>{extra[actor]: <8}</cyan> {message}",
    )
    logging.basicConfig(handlers=[_Intercept()], level=logging.INFO, force=True)
