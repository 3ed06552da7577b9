"""Settings of sign-in, sessions, tokens and quotas, from the environment of `taza serve`
(and of `taza users`, which issues tokens and links). Defaults and meaning: docs/stewards.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from catalog import settings

GiB = 1 << 30
DAY = 86_400.0


def stewards_dir(home: Path) -> Path:
    """Where the service keeps its drafts, uploads and (embedded) database; never served."""
    return Path(home) / "stewards"


class SettingError(settings.SettingError):
    """An environment variable of the stewards' service holds something that is not a usable
    value (its text in every language: catalog/settings_texts.yml)."""


@dataclass(frozen=True)
class StewardSettings:
    token_lifetime_days: float = 90.0          # TAZA_TOKEN_LIFETIME_DAYS
    session_idle_seconds: float = 1800.0       # TAZA_SESSION_IDLE_SECONDS
    session_max_seconds: float = 43_200.0      # TAZA_SESSION_MAX_SECONDS
    password_link_hours: float = 72.0          # TAZA_PASSWORD_LINK_HOURS
    signin_account_failures: int = 5           # TAZA_SIGNIN_ACCOUNT_FAILURES
    signin_address_failures: int = 20          # TAZA_SIGNIN_ADDRESS_FAILURES
    signin_window_seconds: float = 900.0       # TAZA_SIGNIN_WINDOW_SECONDS
    quota_open_drafts: int = 20                # TAZA_QUOTA_OPEN_DRAFTS (per organisation)
    quota_upload_bytes: int = 20 * GiB         # TAZA_QUOTA_UPLOAD_BYTES (per organisation)

    @property
    def token_lifetime_seconds(self) -> float:
        return self.token_lifetime_days * DAY

    @classmethod
    def from_environment(cls) -> StewardSettings:
        """Every field from TAZA_<FIELD NAME IN CAPITALS>, when set; each must be positive."""
        values = {}
        for field in fields(cls):
            name = f"TAZA_{field.name.upper()}"
            raw = os.environ.get(name)
            if raw is None or not raw.strip():
                continue
            kind = int if field.type == "int" else float
            try:
                value = kind(raw)
            except ValueError as err:
                raise SettingError(f"{name}={raw!r}: expected a number", code="number",
                                   params={"name": name, "value": raw}) from err
            if not value > 0:
                raise SettingError(f"{name}={raw!r}: must be greater than 0",
                                   code="positive", params={"name": name, "value": raw})
            values[field.name] = value
        return cls(**values)
