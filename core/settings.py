"""One settings object for every process, read from ``AIMPACT_*`` variables and ``.env``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TaskQueue = Literal["agents"]
"""Task queues that have workers today (voice and optimizer join as they land)."""


class Settings(BaseSettings):
    """Configuration of AImPact; every field maps to ``AIMPACT_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="AIMPACT_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    home: Path = Field(default=Path(".aimpact"), description="State directory of `aimpact up`.")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="URL clients use for the API.")

    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    temporal_http_port: int = Field(default=7243, ge=1, le=65535)
    temporal_metrics_port: int = Field(default=7235, ge=1, le=65535)
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = None

    database_url: str | None = Field(default=None, description="External PostgreSQL URL.")
    redis_url: str | None = Field(default=None, description="External Redis URL.")
    temporal_address: str | None = Field(default=None, description="External Temporal host:port.")

    admin_email: str = "admin@aimpact.local"
    admin_password: SecretStr | None = None
    bootstrap_api_key: SecretStr | None = None

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    credential_cache_s: float = Field(
        default=10.0, ge=0, le=300, description="How long an API replica trusts a verified API key."
    )
    agents_task_queue: str = Field(default="agents", min_length=1, max_length=200)
    activity_heartbeat_timeout_s: float = Field(
        default=15.0, gt=0, le=600, description="How soon a crashed worker's model or tool call is retried."
    )
    agent_max_steps: int = Field(default=12, ge=1, le=100)
    worker_queues: list[TaskQueue] = Field(default_factory=lambda: list[TaskQueue](["agents"]))

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("admin_email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        if "@" not in value or value.startswith("@") or value.endswith("@"):
            raise ValueError("must be an email address")
        return value.lower()

    @cached_property
    def api_url(self) -> str:
        """Base URL of the API as printed for users."""
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @cached_property
    def temporal_ui_base(self) -> str:
        """Base URL of the Temporal UI used in run links."""
        return self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def temporal_target(self) -> str:
        """The Temporal frontend address workers and the API connect to."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def embedded_pgdata(self) -> Path:
        """Data directory (and unix-socket directory) of the embedded PostgreSQL."""
        return self.home / "postgres" / "data"

    @property
    def embedded_redis_dir(self) -> Path:
        """Data directory of the embedded Redis; its socket is ``redis.sock`` inside."""
        return self.home / "redis"

    @property
    def database_target(self) -> str:
        """SQLAlchemy URL of the app database (external, else the embedded socket)."""
        if self.database_url:
            return self.database_url
        return f"postgresql+psycopg://postgres@/aimpact?host={self.embedded_pgdata}&port=5432"

    @property
    def redis_target(self) -> str:
        """Redis URL (external, else the embedded unix socket)."""
        if self.redis_url:
            return self.redis_url
        return f"unix://{self.embedded_redis_dir / 'redis.sock'}"
