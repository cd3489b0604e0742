"""SQLModel tables. Every tenant-owned row carries ``tenant_id``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, LargeBinary, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JsonType = JSON().with_variant(JSONB(), "postgresql")
EMBEDDING_DIM = 384
"""Dimension of every stored embedding (all-MiniLM-L6-v2; other embedders are asked for 384)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    """A timestamp column defaulting to now, in Python and in the database."""
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), server_default=func.now(), **kw))


class Tenant(SQLModel, table=True):
    """An isolated customer of the platform."""

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    quotas: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
    egress_allowlist: list[str] = Field(
        default_factory=list, sa_column=Column(JsonType, nullable=False, server_default="[]")
    )
    created_at: datetime = _ts(nullable=False)


class User(SQLModel, table=True):
    """A person who signs in; platform admins have no tenant."""

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str | None = Field(default=None, foreign_key="tenant.id", index=True, max_length=40)
    email: str = Field(max_length=320, unique=True)
    password_hash: str
    role: str = Field(max_length=20)
    is_platform_admin: bool = False
    created_at: datetime = _ts(nullable=False)


class ApiKey(SQLModel, table=True):
    """A service credential; only the SHA-256 of the key is stored."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    user_id: str | None = Field(default=None, foreign_key="user.id", max_length=40)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    prefix: str = Field(max_length=24)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Agent(SQLModel, table=True):
    """An agent; its configuration lives in immutable ``agent_version`` rows."""

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    version: int = 1
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class AgentVersion(SQLModel, table=True):
    """One immutable configuration of an agent."""

    __tablename__ = "agent_version"
    __table_args__ = (UniqueConstraint("agent_id", "version"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    agent_id: str = Field(foreign_key="agent.id", max_length=40)
    version: int
    config: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    created_by_kind: str = Field(default="user", max_length=16)
    """``user`` (a person or an API key), ``optimizer`` or ``recommendation``."""
    created_by_id: str = Field(default="", max_length=40)
    created_at: datetime = _ts(nullable=False)


class RunFeedback(SQLModel, table=True):
    """A score given to a finished run, attributed to the agent version that produced it."""

    __tablename__ = "run_feedback"
    __table_args__ = (Index("ix_run_feedback_tenant_agent_version", "tenant_id", "agent_id", "agent_version"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    run_id: str = Field(foreign_key="run.id", index=True, max_length=40)
    agent_id: str = Field(max_length=40)
    agent_version: int
    score: float
    label: str | None = Field(default=None, max_length=100)
    comment: str | None = Field(default=None, max_length=4000)
    created_by_kind: str = Field(max_length=16)
    created_by_id: str = Field(max_length=40)
    created_at: datetime = _ts(nullable=False)


class Run(SQLModel, table=True):
    """Read projection of an agent run, written by the workers."""

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_run_tenant_created", "tenant_id", "created_at"),
        Index("ix_run_tenant_subject", "tenant_id", "subject"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    agent_id: str = Field(foreign_key="agent.id", index=True, max_length=40)
    agent_version: int
    thread_id: str = Field(max_length=40)
    status: str = Field(max_length=24, index=True)
    input: str
    output: str | None = None
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    subject: str | None = Field(default=None, max_length=200)
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JsonType, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=200)
    idempotency_hash: str | None = Field(default=None, max_length=64)
    """SHA-256 of the request that used ``idempotency_key`` (``None`` for runs started before it was kept)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    workflow_id: str = Field(max_length=200)
    workflow_run_id: str | None = Field(default=None, max_length=64)
    parent_run_id: str | None = Field(default=None, max_length=40, index=True)
    experiment_id: str | None = Field(default=None, max_length=40, index=True)
    """The online experiment that chose this run's version, if any."""
    experiment_arm: str | None = Field(default=None, max_length=16)
    """``control`` or ``candidate`` within ``experiment_id``."""
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class RunStep(SQLModel, table=True):
    """One step of a run; ``(run_id, step_id)`` is unique, so retried writes upsert."""

    __tablename__ = "run_step"
    __table_args__ = (UniqueConstraint("run_id", "step_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    run_id: str = Field(foreign_key="run.id", max_length=40)
    step_id: str = Field(max_length=40)
    seq: int
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    status: str = Field(max_length=24)
    attempts: int = 1
    input: Any = Field(default=None, sa_column=Column(JsonType))
    output: Any = Field(default=None, sa_column=Column(JsonType))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class StepEffect(SQLModel, table=True):
    """Ledger of side effects keyed by workflow id + step id: each key is applied once."""

    __tablename__ = "step_effect"

    key: str = Field(primary_key=True, max_length=300)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    result: Any = Field(default=None, sa_column=Column(JsonType))
    created_at: datetime = _ts(nullable=False)


class RefreshToken(SQLModel, table=True):
    """An opaque refresh token (hash only); rotated on use, revoked as a family on reuse."""

    __tablename__ = "refresh_token"

    id: str = Field(primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    tenant_id: str | None = Field(default=None, foreign_key="tenant.id", index=True, max_length=40)
    family_id: str = Field(index=True, max_length=40)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class AuditEvent(SQLModel, table=True):
    """Who changed what: agents, keys, users, roles, quotas, secrets, tenants."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_tenant_created", "tenant_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str | None = Field(default=None, foreign_key="tenant.id", max_length=40)
    actor_id: str = Field(max_length=40)
    actor_kind: str = Field(max_length=16)
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
    created_at: datetime = _ts(nullable=False)


class Secret(SQLModel, table=True):
    """A tenant secret, AES-GCM encrypted; the plaintext never leaves the workers' resolvers."""

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    name: str = Field(max_length=100)
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class TenantTool(SQLModel, table=True):
    """A tenant-defined HTTP tool: JSON-schema parameters, URL template, headers with secret references."""

    __tablename__ = "tenant_tool"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
    method: str = Field(max_length=8)
    url: str = Field(max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
    side_effects: bool = True
    timeout_s: float = 30.0
    created_at: datetime = _ts(nullable=False)


class Webhook(SQLModel, table=True):
    """A tenant's subscription to run events; the signing secret is stored encrypted."""

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=Column(JsonType, nullable=False))
    secret_ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts(nullable=False)
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class WebhookDelivery(SQLModel, table=True):
    """One event sent (or being sent) to one webhook, with its attempts."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_delivery_webhook_created", "webhook_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    webhook_id: str = Field(foreign_key="webhook.id", max_length=40)
    event_id: str = Field(max_length=200)
    event_type: str = Field(max_length=64)
    status: str = Field(max_length=16)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ThreadMessage(SQLModel, table=True):
    """One message of a conversation thread; workflows carry references, not this text."""

    __tablename__ = "thread_message"
    __table_args__ = (
        UniqueConstraint("tenant_id", "thread_id", "seq", name="uq_thread_message_tenant_thread_seq"),
        Index("ix_thread_message_tenant_thread", "tenant_id", "thread_id"),
        Index("ix_thread_message_tenant_subject", "tenant_id", "subject"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    thread_id: str = Field(max_length=40)
    run_id: str | None = Field(default=None, max_length=40)
    message_key: str = Field(max_length=300, unique=True)
    """Idempotency key (workflow id + step id + part): a retried write adds nothing."""
    seq: int
    role: str = Field(max_length=16)
    content: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JsonType, nullable=False))
    tool_call_id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    kind: str = Field(default="message", max_length=16)
    subject: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts(nullable=False)


class PayloadBlob(SQLModel, table=True):
    """A large value (over the inline limit) kept out of workflow history, passed by reference."""

    __tablename__ = "payload_blob"

    id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    created_at: datetime = _ts(nullable=False)


class Memory(SQLModel, table=True):
    """A long-term fact about a subject, with its embedding (``NULL`` until embedded)."""

    __tablename__ = "memory"
    __table_args__ = (
        Index("ix_memory_tenant_subject", "tenant_id", "subject", "created_at"),
        Index(
            "ix_memory_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 200},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    subject: str = Field(max_length=200)
    text: str
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JsonType, nullable=False))
    embedding: Any = Field(default=None, sa_column=Column(Vector(EMBEDDING_DIM), nullable=True))
    embedder: str | None = Field(default=None, max_length=40)
    status: str = Field(default="pending", max_length=16)
    """``pending`` (queued for embedding) or ``ready``."""
    importance: float = 0.5
    use_count: int = 0
    source_run_id: str | None = Field(default=None, max_length=40)
    source_step_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _ts(nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class ThreadCompaction(SQLModel, table=True):
    """A summary that replaced a thread's older messages in the prompt (the messages stay stored)."""

    __tablename__ = "thread_compaction"
    __table_args__ = (
        UniqueConstraint("tenant_id", "thread_id", "upto_seq", name="uq_thread_compaction_tenant_thread_upto"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    thread_id: str = Field(max_length=40, index=True)
    subject: str | None = Field(default=None, max_length=200)
    run_id: str | None = Field(default=None, max_length=40)
    upto_seq: int
    """Messages with ``seq <= upto_seq`` are represented by ``summary``."""
    summary: str
    method: str = Field(max_length=40)
    messages: int
    tokens_before: int
    tokens_after: int
    created_at: datetime = _ts(nullable=False)


class Pipeline(SQLModel, table=True):
    """A tenant-defined pipeline; its definition lives in immutable ``pipeline_version`` rows."""

    __table_args__ = (Index("ix_pipeline_tenant_created", "tenant_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    name: str = Field(max_length=200)
    version: int = 1
    """The current version: the one new runs use."""
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class PipelineVersion(SQLModel, table=True):
    """One immutable, validated definition of a pipeline."""

    __tablename__ = "pipeline_version"
    __table_args__ = (UniqueConstraint("pipeline_id", "version"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    pipeline_id: str = Field(foreign_key="pipeline.id", max_length=40)
    version: int
    definition: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    created_by_kind: str = Field(default="user", max_length=16)
    created_by_id: str = Field(default="", max_length=40)
    created_at: datetime = _ts(nullable=False)


class PipelineRun(SQLModel, table=True):
    """Read projection of a pipeline run, written by the API (start) and the pipelines worker."""

    __tablename__ = "pipeline_run"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_pipeline_run_tenant_created", "tenant_id", "created_at"),
        Index("ix_pipeline_run_schedule_created", "schedule_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    pipeline_id: str = Field(max_length=40, index=True)
    version: int
    status: str = Field(max_length=24)
    input: Any = Field(default=None, sa_column=Column(JsonType))
    output: Any = Field(default=None, sa_column=Column(JsonType))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    idempotency_key: str | None = Field(default=None, max_length=200)
    idempotency_hash: str | None = Field(default=None, max_length=64)
    """SHA-256 of the request that used ``idempotency_key``."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    workflow_id: str = Field(max_length=200)
    workflow_run_id: str | None = Field(default=None, max_length=64)
    rerun_of: str | None = Field(default=None, max_length=40)
    parent_run_id: str | None = Field(default=None, max_length=40)
    """The run whose ``pipeline`` step started this one."""
    parent_step_id: str | None = Field(default=None, max_length=100)
    reused_steps: list[str] | None = Field(default=None, sa_column=Column(JsonType))
    """A re-run's top-level steps whose records it took from ``rerun_of`` (their map items too)."""
    schedule_id: str | None = Field(default=None, max_length=200)
    """The Temporal schedule that started the run, if one did."""
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class PipelineRunStep(SQLModel, table=True):
    """One step of a pipeline run (``m[3]`` for an item of map ``m``); ``(run_id, step_id)`` is unique."""

    __tablename__ = "pipeline_run_step"
    __table_args__ = (UniqueConstraint("run_id", "step_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    run_id: str = Field(foreign_key="pipeline_run.id", max_length=40)
    step_id: str = Field(max_length=100)
    type: str = Field(max_length=16)
    status: str = Field(max_length=24)
    attempts: int = 0
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    output: Any = Field(default=None, sa_column=Column(JsonType))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))


class Dataset(SQLModel, table=True):
    """An immutable set of examples to optimize an agent on, hashed, with its split counts."""

    __table_args__ = (Index("ix_dataset_tenant_agent_created", "tenant_id", "agent_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    agent_id: str = Field(foreign_key="agent.id", max_length=40)
    name: str = Field(max_length=200)
    size: int
    hash: str = Field(max_length=64)
    """SHA-256 of the canonical JSON of its examples in order (``core.optimizer.datasets``)."""
    train: int
    validation: int
    test: int
    source: str = Field(max_length=16)
    """``runs``, ``examples`` or ``mixed``."""
    filters: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    """The ``from_runs`` filters the runs were selected with."""
    created_by_kind: str = Field(default="user", max_length=16)
    created_by_id: str = Field(default="", max_length=40)
    created_at: datetime = _ts(nullable=False)


class DatasetExample(SQLModel, table=True):
    """One example of a dataset at its position, with its split."""

    __tablename__ = "dataset_example"
    __table_args__ = (
        UniqueConstraint("dataset_id", "example_id"),
        Index("ix_dataset_example_split", "dataset_id", "split", "position"),
    )

    dataset_id: str = Field(foreign_key="dataset.id", primary_key=True, max_length=40)
    position: int = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    example_id: str = Field(max_length=40)
    split: str = Field(max_length=16)
    input: str
    expected: str | None = None
    rubric: str | None = None
    output: str | None = None
    source_run_id: str | None = Field(default=None, max_length=40)
    feedback_score: float | None = None


class OptimizerRun(SQLModel, table=True):
    """Read projection of an optimizer run, written by the API (start) and the optimizer worker."""

    __tablename__ = "optimizer_run"
    __table_args__ = (
        Index("ix_optimizer_run_tenant_agent_created", "tenant_id", "agent_id", "created_at"),
        Index("ix_optimizer_run_schedule_created", "schedule_id", "created_at"),
        Index("ix_optimizer_run_tenant_live", "tenant_id", postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    agent_id: str = Field(foreign_key="agent.id", max_length=40)
    dataset_id: str | None = Field(default=None, foreign_key="dataset.id", max_length=40)
    """``None`` only for a scheduled run that failed before its dataset was built."""
    status: str = Field(max_length=24)
    """``queued``, ``running``, ``completed``, ``failed`` or ``cancelled``."""
    baseline_version: int
    metric: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    budget: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    """``{max_evals, max_cost_usd}``."""
    strategies: list[str] = Field(sa_column=Column(JsonType, nullable=False))
    auto_promote: bool = True
    evaluation: str = Field(default="safe", max_length=16)
    """How tool calls are answered: ``safe`` (the recording, then pure tools live), ``replay`` (the recording only)."""
    progress: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    candidates: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JsonType))
    """``[{version, strategy, note, score, ci, n, stage}]``."""
    winner: int | None = None
    promoted: bool = False
    reason: str | None = Field(default=None, max_length=4000)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    dataset_hash: str = Field(max_length=64)
    evals_used: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    workflow_id: str = Field(max_length=200)
    schedule_id: str | None = Field(default=None, max_length=200)
    """The schedule that started the run (``None``: started over the API)."""
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class OptimizerEval(SQLModel, table=True):
    """One paid evaluation: a configuration (by content hash) on one example under one metric (by hash)."""

    __tablename__ = "optimizer_eval"
    __table_args__ = (UniqueConstraint("tenant_id", "config_hash", "example_id", "metric_hash"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    config_hash: str = Field(max_length=64)
    example_id: str = Field(max_length=40)
    metric_hash: str = Field(max_length=64)
    score: float
    reason: str | None = None
    output: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    from_recording: int = 0
    """Tool calls answered from the example's recording."""
    not_in_recording: int = 0
    """Tool calls its recording did not hold."""
    created_at: datetime = _ts(nullable=False)


class Replay(SQLModel, table=True):
    """A counterfactual replay: recorded runs of an agent re-run with one of its versions."""

    __table_args__ = (
        Index("ix_replay_tenant_agent_created", "tenant_id", "agent_id", "created_at"),
        Index("ix_replay_tenant_live", "tenant_id", postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    agent_id: str = Field(foreign_key="agent.id", max_length=40)
    version: int
    """The candidate version."""
    status: str = Field(max_length=24)
    """``queued``, ``running``, ``completed``, ``failed`` or ``cancelled``."""
    run_ids: list[str] = Field(sa_column=Column(JsonType, nullable=False))
    """The recorded runs replayed, in the order they are reported."""
    metric: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    """The metric scoring both outputs; ``None``: no scores, outputs and tool calls only."""
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    workflow_id: str = Field(max_length=200)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class ReplayResult(SQLModel, table=True):
    """One recorded run of a replay: both outputs, their scores and the candidate's tool calls."""

    __tablename__ = "replay_result"
    __table_args__ = (UniqueConstraint("replay_id", "run_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    replay_id: str = Field(foreign_key="replay.id", max_length=40)
    run_id: str = Field(max_length=40)
    outcome: str = Field(max_length=24)
    """``completed``, ``step_limit`` or ``failed`` (the candidate could not run; ``error`` says why)."""
    recorded_output: str | None = None
    candidate_output: str | None = None
    recorded_score: float | None = None
    recorded_reason: str | None = None
    candidate_score: float | None = None
    candidate_reason: str | None = None
    tool_calls: list[dict[str, Any]] = Field(sa_column=Column(JsonType, nullable=False))
    """``[{name, arguments, answered_from, result, is_error}]`` in the candidate's order."""
    from_recording: int = 0
    not_in_recording: int = 0
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = _ts(nullable=False)


class Experiment(SQLModel, table=True):
    """An online A/B of an agent's current version (the control) against a candidate version."""

    __table_args__ = (
        Index("ix_experiment_tenant_agent_created", "tenant_id", "agent_id", "created_at"),
        Index(
            "ux_experiment_running_agent",
            "agent_id",
            unique=True,
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    agent_id: str = Field(foreign_key="agent.id", max_length=40)
    control_version: int
    candidate_version: int
    traffic: float
    """The candidate's share of new subjects until every arm has ``min_samples`` scores, in (0, 1]."""
    candidate_share: float
    """The candidate's share of new subjects now: ``traffic``, then the Thompson allocation (set by feedback)."""
    min_samples: int
    auto_promote: bool
    status: str = Field(max_length=16)
    """``running``, ``promoted``, ``stopped`` or ``rolled_back``."""
    state: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    """``ExperimentState.to_json()``: per arm (the version as text) its feedback statistics."""
    decision: str | None = Field(default=None, max_length=16)
    """``promote``, ``keep`` or ``rollback`` once the experiment has ended by a decision."""
    reason: str | None = Field(default=None, max_length=2000)
    created_by_kind: str = Field(default="user", max_length=16)
    created_by_id: str = Field(default="", max_length=40)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ExperimentAssignment(SQLModel, table=True):
    """The arm a subject (else thread) got on its first run of an experiment, kept for the experiment's life."""

    __tablename__ = "experiment_assignment"

    experiment_id: str = Field(foreign_key="experiment.id", primary_key=True, max_length=40)
    subject_key: str = Field(primary_key=True, max_length=200)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    arm: str = Field(max_length=16)
    """``control`` or ``candidate``."""
    created_at: datetime = _ts(nullable=False)


class VoiceSession(SQLModel, table=True):
    """A voice conversation with one agent version on one thread (``VoiceSessionWorkflow``)."""

    __tablename__ = "voice_session"
    __table_args__ = (
        Index("ix_voice_session_tenant_created", "tenant_id", "created_at"),
        Index("ix_voice_session_tenant_subject", "tenant_id", "subject"),
        Index("ix_voice_session_live", "tenant_id", postgresql_where=text("status = 'active'")),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    agent_id: str = Field(foreign_key="agent.id", max_length=40)
    agent_version: int
    """The version pinned at the session's start: every turn runs it."""
    thread_id: str = Field(max_length=40)
    subject: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=16)
    """``active``, ``ended`` or ``failed``."""
    end_reason: str | None = Field(default=None, max_length=24)
    """``ended``, ``idle``, ``cancelled``, ``failed`` or ``start_failed`` once the session is over."""
    idle_timeout_s: float
    turns: int = 0
    experiment_id: str | None = Field(default=None, max_length=40)
    experiment_arm: str | None = Field(default=None, max_length=16)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    workflow_id: str = Field(max_length=200)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class VoiceTurn(SQLModel, table=True):
    """One turn of a voice session: what the user said, the reply, their recordings and the latency per stage."""

    __tablename__ = "voice_turn"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40)
    session_id: str = Field(foreign_key="voice_session.id", max_length=40)
    seq: int
    status: str = Field(max_length=16)
    """``completed``, ``silent``, ``interrupted`` or ``failed``."""
    transcript: str = ""
    reply_text: str = ""
    run_id: str | None = Field(default=None, max_length=40)
    """The agent run that answered (``None`` for a silent turn)."""
    user_audio_id: str | None = Field(default=None, max_length=40)
    reply_audio_id: str | None = Field(default=None, max_length=40)
    user_audio_s: float = 0.0
    reply_audio_s: float = 0.0
    vad_ms: float = 0.0
    stt_ms: float = 0.0
    agent_ms: float = 0.0
    tts_ms: float = 0.0
    total_ms: float = 0.0
    endpoint_ms: float = 0.0
    agent_first_token_ms: float = 0.0
    tts_first_audio_ms: float = 0.0
    first_audio_ms: float = 0.0
    """Streamed turns: from the end of speech to the first reply audio sent."""
    interrupted: bool = False
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class VoiceAudio(SQLModel, table=True):
    """A recording of a voice turn (16 kHz mono PCM16 WAV), kept out of workflow history and for retention."""

    __tablename__ = "voice_audio"
    __table_args__ = (Index("ix_voice_audio_tenant_session", "tenant_id", "session_id"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    session_id: str = Field(max_length=40)
    side: str = Field(max_length=8)
    """``user`` or ``reply``."""
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    duration_s: float
    created_at: datetime = _ts(nullable=False, index=True)


class Recommendation(SQLModel, table=True):
    """A change the recommendation engine suggests, with its evidence, the action apply performs and its outcome.

    One finding (``fingerprint``: kind, target and rule) has at most one ``open`` row per tenant;
    a finding found again after a dismissal or an apply gets a new row (``previous_id``).
    """

    __table_args__ = (
        Index("ix_recommendation_tenant_created", "tenant_id", "created_at"),
        Index("ix_recommendation_tenant_fingerprint", "tenant_id", "fingerprint", "created_at"),
        Index(
            "ux_recommendation_open_fingerprint",
            "tenant_id",
            "fingerprint",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40)
    kind: str = Field(max_length=24)
    """``prompt``, ``model``, ``retry_policy``, ``timeout``, ``tool`` or ``pipeline``."""
    rule: str = Field(max_length=64)
    """The rule that found it (``tool.failure_rate``, ``pipeline.concurrency``, …)."""
    target: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    target_key: str = Field(max_length=400)
    fingerprint: str = Field(max_length=64)
    """SHA-256 of kind, target key, rule and the finding's own key: the same finding on every pass."""
    title: str = Field(max_length=500)
    evidence: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    expected_gain: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    action: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    basis: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    """What the evidence was computed on (an agent's or a pipeline's version); apply checks it is still current."""
    status: str = Field(max_length=16)
    """``open``, ``applied``, ``dismissed`` or ``stale``."""
    status_reason: str | None = Field(default=None, max_length=2000)
    previous_id: str | None = Field(default=None, max_length=40)
    """The dismissed or applied recommendation of the same finding that this one follows."""
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    """What apply did: the version or the optimizer run it created."""
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    """The measured effect after apply, next to the expectation (written by mining passes)."""
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    seen_at: datetime = _ts(nullable=False)
    """The latest mining pass that found it."""
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
