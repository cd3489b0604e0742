"""What the API answers, as typed dictionaries (the JSON as it comes; extra fields pass through)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypedDict, TypeVar

T = TypeVar("T")

RunStatus = Literal["queued", "running", "waiting_approval", "completed", "failed", "cancelled"]
Role = Literal["owner", "admin", "developer", "operator", "viewer"]


class Page(TypedDict, Generic[T]):
    """One page of a list; ``next_cursor`` is ``None`` on the last."""

    items: list[T]
    next_cursor: str | None


class Usage(TypedDict):
    """Tokens and cost."""

    input_tokens: int
    output_tokens: int
    cost_usd: float


class Step(TypedDict):
    """One step of a run: ``kind`` is llm, tool, approval or memory."""

    id: str
    kind: str
    name: str
    status: str
    started_at: str | None
    ended_at: str | None
    attempts: int
    input: Any
    output: Any
    error: dict[str, Any] | None


class TemporalLink(TypedDict):
    """Where the run lives in Temporal."""

    workflow_id: str
    run_id: str | None
    ui_url: str


class Run(TypedDict):
    """An agent run."""

    id: str
    agent_id: str
    agent_version: int
    thread_id: str
    status: RunStatus
    input: str
    output: str | None
    steps: list[Step]
    usage: Usage
    error: dict[str, Any] | None
    subject: str | None
    metadata: dict[str, Any]
    experiment_id: str | None
    experiment_arm: str | None
    created_at: str
    updated_at: str
    temporal: TemporalLink


class Turn(TypedDict):
    """The turn a message or a retry set going; follow it with ``events(after=after_event_id)``."""

    number: int
    message_id: str | None
    policy: str | None
    after_event_id: str


class RunTurn(Run):
    """A run and the turn a message or a retry set going."""

    turn: Turn


class ThreadMessage(TypedDict):
    """One message of a thread."""

    seq: int
    role: str
    content: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str | None
    name: str | None
    run_id: str | None
    created_at: str


class AgentConfig(TypedDict):
    """What a version of an agent sets."""

    name: str
    instructions: str
    model: dict[str, Any]
    tools: list[dict[str, Any]]
    memory: dict[str, Any]
    double_texting: str
    parallel_tool_calls: bool


class Agent(AgentConfig):
    """An agent at its current version."""

    id: str
    version: int
    created_at: str
    updated_at: str


class Author(TypedDict):
    """Who made a version or gave feedback: ``kind`` is user, optimizer or recommendation."""

    kind: str
    id: str


class FeedbackSummary(TypedDict):
    """Feedback on the runs of one version."""

    n: int
    mean: float | None


class AgentVersion(AgentConfig):
    """One immutable version of an agent."""

    version: int
    created_at: str
    created_by: Author
    current: bool
    feedback: FeedbackSummary


class Feedback(TypedDict):
    """Feedback on a run."""

    id: str
    run_id: str
    agent_id: str
    agent_version: int
    score: float
    label: str | None
    comment: str | None
    created_by: Author
    created_at: str


class Tenant(TypedDict):
    """A tenant."""

    id: str
    name: str
    quotas: dict[str, Any]
    egress_allowlist: list[str]
    created_at: str


class User(TypedDict):
    """A user of the caller's tenant."""

    id: str
    email: str
    role: str
    created_at: str


class ApiKey(TypedDict):
    """An API key (never the key itself after its creation)."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: str
    last_used_at: str | None


class ApiKeyCreated(ApiKey):
    """A new API key: ``key`` is shown this once."""

    key: str


class Tool(TypedDict, total=False):
    """A tool: built in (``builtin``) or the tenant's HTTP tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    builtin: bool
    method: str | None
    url: str | None
    headers: dict[str, str]
    side_effects: bool
    timeout_s: float | None
    created_at: str | None


class Webhook(TypedDict):
    """A webhook (never its secret after its creation)."""

    id: str
    url: str
    events: list[str]
    created_at: str


class WebhookCreated(Webhook):
    """A new webhook: ``secret`` (the signing key) is shown this once."""

    secret: str


class Delivery(TypedDict):
    """One event sent, or being sent, to a webhook."""

    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class Memory(TypedDict):
    """A stored memory; ``status`` is pending until its embedding is stored."""

    id: str
    subject: str
    text: str
    metadata: dict[str, Any]
    status: str
    importance: float
    use_count: int
    source_run_id: str | None
    created_at: str
    last_used_at: str | None


class MemoryHit(TypedDict):
    """A search result; ``score`` is the cosine similarity to the query."""

    id: str
    text: str
    score: float
    subject: str
    metadata: dict[str, Any]


class MemorySearch(TypedDict):
    """The answer of a memory search."""

    items: list[MemoryHit]


class Erasure(TypedDict):
    """What erasing a subject removed, per kind."""

    subject: str
    deleted: dict[str, int]


class Secret(TypedDict):
    """A secret's name and dates; never its value."""

    name: str
    created_at: str
    updated_at: str


class Me(TypedDict):
    """Who the credentials belong to and what they may do."""

    user_id: str | None
    api_key_id: str | None
    email: str | None
    tenant_id: str | None
    role: str
    permissions: list[str]


class TokenPair(TypedDict):
    """Access and refresh tokens of a sign-in."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class AgentUsage(TypedDict):
    """Usage of one agent in the period."""

    agent_id: str
    agent_name: str
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


UsageReport = TypedDict(
    "UsageReport",
    {
        "tenant_id": str,
        "from": str | None,
        "to": str | None,
        "runs": int,
        "input_tokens": int,
        "output_tokens": int,
        "cost_usd": float,
        "agents": list[AgentUsage],
    },
)
"""The tenant's usage in a period (``from`` and ``to`` as asked), in all and per agent."""


PipelineRunStatus = RunStatus


class Pipeline(TypedDict):
    """A pipeline at its current version."""

    id: str
    name: str
    version: int
    definition: dict[str, Any]
    archived: bool
    archived_at: str | None
    created_at: str
    updated_at: str


class PipelineVersion(TypedDict):
    """One immutable version of a pipeline's definition."""

    pipeline_id: str
    version: int
    definition: dict[str, Any]
    current: bool
    created_at: str
    created_by: Author


class PipelineFieldError(TypedDict):
    """One problem of a definition, at its JSON pointer."""

    field: str
    message: str


class PipelineValidation(TypedDict):
    """What ``POST /v1/pipelines/validate`` answers: the problems, or the plan (waves of steps that start together)."""

    valid: bool
    errors: list[PipelineFieldError]
    plan: dict[str, Any] | None


class PipelineStep(TypedDict):
    """One step of a pipeline run (``m[3]`` for an item of map ``m``)."""

    id: str
    type: str
    status: str
    started_at: str | None
    ended_at: str | None
    attempts: int
    output: Any
    error: dict[str, Any] | None


class PipelineRun(TypedDict):
    """A run of one version of a pipeline."""

    id: str
    pipeline_id: str
    version: int
    status: PipelineRunStatus
    input: Any
    output: Any
    steps: list[PipelineStep]
    usage: Usage
    error: dict[str, Any] | None
    created_at: str
    updated_at: str
    temporal: TemporalLink


class PipelineSchedule(TypedDict, total=False):
    """A pipeline's schedule (a Temporal Schedule): when it fires and with what input."""

    pipeline_id: str
    cron: str
    input: Any
    overlap: str
    paused: bool


RecommendationStatus = Literal["open", "applied", "dismissed", "stale"]
RecommendationKind = Literal["prompt", "model", "retry_policy", "timeout", "tool", "pipeline"]


class ExpectedGain(TypedDict):
    """What applying is expected to gain, in a unit a person reads, and the assumption it rests on."""

    quantity: float
    unit: str
    assumption: str | None


class Recommendation(TypedDict):
    """A suggested change with its evidence, the action apply performs (``action.requires``: the permission it
    needs), its status and, once applied, its ``result`` and ``outcome``."""

    id: str
    kind: RecommendationKind
    rule: str
    target: dict[str, Any]
    title: str
    evidence: dict[str, Any]
    expected_gain: ExpectedGain
    action: dict[str, Any]
    basis: dict[str, Any]
    status: RecommendationStatus
    status_reason: str | None
    previous_id: str | None
    result: dict[str, Any] | None
    outcome: dict[str, Any] | None
    decided_by: str | None
    decided_at: str | None
    seen_at: str
    created_at: str
    updated_at: str


class RecommendationRefresh(TypedDict):
    """The mining pass a refresh started, or the one already running that it joined (``reused``)."""

    workflow_id: str
    run_id: str | None
    reused: bool
    ui_url: str
