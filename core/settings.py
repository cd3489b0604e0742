"""One settings object for every process, read from ``AIMPACT_*`` variables and ``.env``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "aimpact-dev-only-jwt-secret-do-not-use-in-production"  # noqa: S105 - refused outside dev
DEV_ENCRYPTION_KEY = "dev:ZGV2LW9ubHktMzItYnl0ZS1rZXktZm9yLWFpbXBhY3Q="
"""Dev keyring (32 bytes, public): refused outside dev, like the JWT secret."""

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

    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_JWT_SECRET), description="HS256 signing secret (at least 32 bytes outside dev)."
    )
    jwt_previous_secrets: list[SecretStr] = Field(
        default_factory=list, description="Earlier HS256 secrets: tokens they signed stay valid until expiry."
    )
    jwt_signing_keys: str | None = Field(
        default=None,
        description="Asymmetric keys 'kid:path.pem,...' (Ed25519 or RSA private keys); the first signs.",
    )
    jwt_issuer: str = "aimpact"
    jwt_audience: str = "aimpact-api"
    access_token_ttl_s: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_s: int = Field(default=30 * 86_400, ge=3600, le=365 * 86_400)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=30, ge=1)
    login_window_s: int = Field(default=900, ge=1)
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="AES-256-GCM keyring 'kid:base64key,...' for secrets and payloads; the first encrypts.",
    )
    payload_encryption: bool | None = Field(
        default=None, description="Encrypt Temporal payloads (default: on outside dev)."
    )
    default_requests_per_minute: int = Field(default=1200, ge=1)
    default_concurrent_runs: int = Field(default=100, ge=1)
    default_tokens_per_day: int = Field(default=10_000_000, ge=1)

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    credential_cache_s: float = Field(
        default=10.0, ge=0, le=300, description="How long an API replica trusts a verified API key."
    )
    model_prices: str | None = Field(
        default=None,
        description='JSON {"model-prefix": {"input": usd_per_1m, "output": usd_per_1m}} over the built-in list prices.',
    )
    egress_allowlist: str = Field(
        default="", description="Hosts, *.suffixes, IPs and CIDRs every tenant may reach: 'host,10.0.0.0/8'."
    )
    thread_idle_s: float = Field(
        default=300.0, ge=0, le=7 * 86_400, description="How long a run waits for the next message after a turn."
    )
    retry_window_s: float = Field(
        default=3600.0, ge=0, le=30 * 86_400, description="How long a failed run can be retried from its failed step."
    )
    agents_task_queue: str = Field(default="agents", min_length=1, max_length=200)
    activity_heartbeat_timeout_s: float = Field(
        default=15.0, gt=0, le=600, description="How soon a crashed worker's model or tool call is retried."
    )
    agent_max_steps: int = Field(default=12, ge=1, le=100)
    worker_queues: list[TaskQueue] = Field(default_factory=lambda: list[TaskQueue](["agents"]))

    embedder: Literal["minilm", "openai", "hash"] = Field(
        default="minilm",
        description="Memory embeddings: all-MiniLM-L6-v2 offline, an OpenAI-compatible endpoint, or lexical hashing.",
    )
    embedder_url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible /v1/embeddings API.")
    embedder_model: str = Field(default="text-embedding-3-small", min_length=1, max_length=200)
    embedder_api_key: SecretStr | None = None
    embedder_threads: int = Field(default=2, ge=1, le=64, description="CPU threads of the minilm embedder.")
    memory_max_text_chars: int = Field(default=4000, ge=1, le=100_000, description="Longest memory text accepted.")
    memory_subject_cap: int = Field(
        default=1000, ge=1, le=1_000_000, description="Memories kept per subject by consolidation."
    )
    memory_duplicate_similarity: float = Field(
        default=0.92, gt=0, le=1, description="Cosine similarity at which consolidation merges two memories."
    )
    memory_consolidation_interval_s: float = Field(
        default=3600.0, ge=1, le=30 * 86_400, description="How often the consolidation schedule runs."
    )
    memory_write_wait_s: float = Field(
        default=5.0, ge=0, le=60, description="How long POST /v1/memories waits for the embedding before 202."
    )

    @model_validator(mode="after")
    def _no_default_secrets_outside_dev(self) -> Settings:
        if self.env != "dev":
            secret = self.jwt_secret.get_secret_value()
            if not self.jwt_signing_keys and (secret == DEV_JWT_SECRET or len(secret.encode()) < 32):
                raise ValueError("jwt_secret must be set to at least 32 random bytes outside dev")
            if self.encryption_keys is None:
                raise ValueError("encryption_keys must be set outside dev")
        return self

    @property
    def encrypt_payloads(self) -> bool:
        """Whether Temporal payloads are encrypted."""
        return self.payload_encryption if self.payload_encryption is not None else self.env != "dev"

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

    @property
    def encryption_keyring(self) -> str:
        """The keyring setting in force (the public dev key only in dev)."""
        return self.encryption_keys.get_secret_value() if self.encryption_keys else DEV_ENCRYPTION_KEY
