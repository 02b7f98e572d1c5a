"""A venue's credentials: from the environment or a key file only readable by its owner, never shown.

``TRADING_VENUE_API_KEY``, ``TRADING_VENUE_SECRET`` and ``TRADING_VENUE_PASSWORD`` (where the venue
needs one) come first; else the TOML file named by ``venue.key_file`` (keys ``api_key``, ``secret``,
``password``), refused unless its mode is 600 (or 400). The values never appear in a repr, a log line,
``health`` or an error message.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisors.errors import SettingsError

__all__ = ["Credentials", "load_credentials"]

ENV = {"api_key": "TRADING_VENUE_API_KEY", "secret": "TRADING_VENUE_SECRET", "password": "TRADING_VENUE_PASSWORD"}


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key, its secret and an optional password; ``origin`` says where they came from."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str = field(default="", repr=False)
    origin: str = ""

    def __str__(self) -> str:
        return f"credentials from {self.origin}"


def load_credentials(venue: str, key_file: str = "", env: Mapping[str, str] | None = None) -> Credentials:
    """The credentials for ``venue``; SettingsError (one line, no secret in it) when none are given, the
    key file is readable by others, or it lacks a key."""
    env = os.environ if env is None else env
    if env.get(ENV["api_key"]) or env.get(ENV["secret"]):
        missing = [name for key, name in ENV.items() if key != "password" and not env.get(name)]
        if missing:
            raise SettingsError(f"venue {venue}: {', '.join(missing)} is not set (the key and the secret go together)")
        return Credentials(env[ENV["api_key"]], env[ENV["secret"]], env.get(ENV["password"], ""), "the environment")
    if not key_file:
        raise SettingsError(f"venue {venue} needs credentials: set TRADING_VENUE_API_KEY and TRADING_VENUE_SECRET "
                            "(and TRADING_VENUE_PASSWORD where the venue uses one), or name a key file in "
                            "venue.key_file")
    path = Path(key_file).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SettingsError(f"settings key 'venue.key_file': cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(f"settings key 'venue.key_file': {path} is readable by others (mode "
                            f"{stat.S_IMODE(mode):03o}); make it 600 (chmod 600 {path})")
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"settings key 'venue.key_file': {path} is not a readable TOML file "
                            f"({type(exc).__name__})") from None
    values = {key: document.get(key, "") for key in ENV}
    bad = [key for key in ("api_key", "secret") if not isinstance(values[key], str) or not values[key]]
    if bad or not isinstance(values["password"], str):
        raise SettingsError(f"settings key 'venue.key_file': {path} must set api_key and secret (strings)")
    return Credentials(values["api_key"], values["secret"], values["password"], str(path))
