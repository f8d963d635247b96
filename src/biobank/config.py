"""Node settings: one pydantic-settings object read from BIOBANK_* environment variables."""

from __future__ import annotations

import json
import os
import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_NAMES = ("secret_key", "vault_key", "pseudonym_key")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class NodeRole(StrEnum):
    HOSPITAL = "hospital"
    REGIONAL = "regional"
    NATIONAL = "national"


class UnsafeSettings(RuntimeError):
    """Raised when production is started with a setting that is only safe for development."""


class Settings(BaseSettings):
    """Everything a node reads from its environment (prefix BIOBANK_)."""

    model_config = SettingsConfigDict(env_prefix="BIOBANK_", env_file=None, extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    role: NodeRole = NodeRole.HOSPITAL
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "var")
    database_url: str | None = None
    institution_code: str = "CN-SH-H01"
    institution_name: str = "Huangpu Union Hospital"
    institution_country: str = "CN"
    # IANA zone in which people type times in forms and imports (e.g. Asia/Shanghai); default: the host's.
    timezone: str | None = None

    # Secrets. In development/test they are generated once into data_dir/secrets.json (mode 0600);
    # production refuses to start unless each is given explicitly.
    secret_key: str | None = None
    vault_key: str | None = None
    pseudonym_key: str | None = None

    session_cookie_name: str = "bb_session"
    session_hours: int = 12
    cookie_secure: bool | None = None
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    token_default_days: int = 90

    # Audit log (docs/audit-log.md): a new signed checkpoint every N seconds or M entries, whichever
    # comes first; witness peers ("<url>" or "<url> <cosigner verifier key>") cosign our checkpoints;
    # audit_witness_logs are the log verifier keys this node itself witnesses.
    audit_checkpoint_seconds: int = Field(default=60, ge=1)
    audit_checkpoint_entries: int = Field(default=1000, ge=1)
    audit_witnesses: list[str] = Field(default_factory=list)
    audit_witness_logs: list[str] = Field(default_factory=list)
    # The checkpoint/witness background thread (None: on, except when env is test).
    audit_background: bool | None = None

    # Consortium ledger (docs/ledger.md): "embedded" is the in-process py-evm chain persisted in
    # data_dir/chain.sqlite3; an http(s) URL is any EVM JSON-RPC node (anvil in tests, Besu in production).
    ledger_url: str = "embedded"
    ledger_enabled: bool = True
    ledger_embedded_chain_id: int = 20387
    # Address of the InstitutionRegistry to join (JSON-RPC); the other contracts are read from it.
    ledger_registry: str | None = None
    # JSON-RPC: how long to wait for a node's answer or a transaction's inclusion.
    ledger_rpc_timeout_seconds: float = Field(default=30.0, gt=0)
    # Publisher: poll interval; retry backoff doubles from 2 s up to this cap.
    ledger_publish_seconds: float = Field(default=1.0, gt=0)
    ledger_retry_max_seconds: float = Field(default=60.0, gt=0)
    # Anchoring: put the latest audit checkpoint on chain every N seconds.
    ledger_anchor_seconds: int = Field(default=60, ge=1)
    # The publisher/anchoring background thread (None: on, except when env is test).
    ledger_background: bool | None = None
    # Access workflow: remind a provider after N days without activity, escalate after M days.
    access_reminder_days: int = Field(default=7, ge=1)
    access_escalation_days: int = Field(default=14, ge=1)

    log_level: str = "INFO"
    log_json: bool = True
    sql_echo: bool = False
    page_size_max: int = 500

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from None
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            missing = [name for name in SECRET_NAMES if not getattr(self, name)]
            if missing:
                raise UnsafeSettings(
                    "production needs explicit secrets: set " + ", ".join(f"BIOBANK_{n.upper()}" for n in missing)
                )
            for name in SECRET_NAMES:
                if len(getattr(self, name)) < 32:
                    raise UnsafeSettings(f"BIOBANK_{name.upper()} must be at least 32 characters in production")
            if self.cookie_secure is False:
                raise UnsafeSettings("BIOBANK_COOKIE_SECURE cannot be false in production")
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'biobank.sqlite3').resolve()}"

    @property
    def secure_cookies(self) -> bool:
        """Whether session cookies carry the Secure flag."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.env is Environment.PRODUCTION

    def secret(self, name: str) -> bytes:
        """A secret as bytes; development secrets are generated and kept in the data directory."""
        value = getattr(self, name)
        if value:
            return str(value).encode()
        return _development_secrets(self.data_dir)[name].encode()


def _development_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / "secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        if all(name in loaded for name in SECRET_NAMES):
            return loaded
    data_dir.mkdir(parents=True, exist_ok=True)
    generated = {name: secrets.token_urlsafe(48) for name in SECRET_NAMES}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secrets
        existing: dict[str, str] = json.loads(path.read_text())
        return existing
    with os.fdopen(fd, "w") as handle:
        json.dump(generated, handle)
    return generated


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings()
    return _current


def configure(settings: Settings | None) -> None:
    """Replace the process-wide settings (tests, and CLI options such as --data-dir)."""
    global _current
    _current = settings
