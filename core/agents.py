"""Agent configuration: the validated shape of one agent version."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator
from pydantic.config import JsonDict

from core.contracts.agent_run import ToolBinding
from core.contracts.llm import ModelConfig
from core.llm.base import AVAILABLE_PROVIDERS
from core.tools.builtin import BUILTIN_TOOL_NAMES
from core.validation import CleanModel

TOOL_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,63}")
TOOL_NAME_SCHEMA: JsonDict = {"pattern": f"^{TOOL_NAME.pattern}$"}
"""The JSON Schema rule of a tool name (built-in names follow it too)."""


class ModelSpec(CleanModel):
    """``model`` of an agent: provider, model name, endpoint, secret reference, params."""

    provider: Literal["local", "openai", "anthropic"] = "local"
    name: str = Field(default="local-echo", min_length=1, max_length=200)
    base_url: str | None = Field(default=None, max_length=2000)
    api_key_secret: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("provider")
    @classmethod
    def _available(cls, value: str) -> str:
        if value not in AVAILABLE_PROVIDERS:
            raise ValueError(
                f"provider {value!r} is not enabled on this server; available: {sorted(AVAILABLE_PROVIDERS)}"
            )
        return value

    @field_validator("params")
    @classmethod
    def _bounded_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        latency = value.get("latency_ms")
        if latency is not None and (not isinstance(latency, int | float) or not 0 <= latency <= 60_000):
            raise ValueError("latency_ms must be a number from 0 to 60000")
        attempts = value.get("max_attempts")
        if attempts is not None and (not isinstance(attempts, int) or not 1 <= attempts <= 20):
            raise ValueError("max_attempts must be an integer from 1 to 20")
        return value

    def to_contract(self) -> ModelConfig:
        """The workflow-side model configuration (secret by reference only)."""
        return ModelConfig(
            provider=self.provider,
            name=self.name,
            base_url=self.base_url,
            api_key_secret=self.api_key_secret,
            params=dict(self.params),
        )


class ToolSpec(CleanModel):
    """A tool attached to an agent with its options."""

    name: str = Field(min_length=1, max_length=100, json_schema_extra=TOOL_NAME_SCHEMA)
    requires_approval: StrictBool = False
    approval_timeout_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    max_attempts: int | None = Field(default=None, ge=1, le=20)

    @field_validator("name")
    @classmethod
    def _tool_name(cls, value: str) -> str:
        if value not in BUILTIN_TOOL_NAMES and not TOOL_NAME.fullmatch(value):
            raise ValueError(f"not a tool name: {value!r}")
        return value

    def to_contract(self) -> ToolBinding:
        """The workflow-side binding."""
        return ToolBinding(**self.model_dump())


class MemorySpec(CleanModel):
    """``memory`` of an agent: its thread-context budget and its long-term memory."""

    enabled: StrictBool = Field(
        default=False, description="Long-term memory: recall before each model step, extraction after each turn."
    )
    context_tokens: int = Field(
        default=16_000, ge=256, le=2_000_000, description="Prompt budget of the thread; older turns are compacted."
    )
    recall_k: int = Field(default=5, ge=1, le=20, description="Memories recalled into the prompt per model step.")
    recall_tokens: int = Field(default=400, ge=16, le=8000, description="Cap on the recalled memories' tokens.")
    extract: StrictBool = Field(default=True, description="Extract facts after each completed turn (when enabled).")


DoubleTexting = Literal["reject", "enqueue", "interrupt"]
"""What a message sent while a turn is running does."""


class AgentConfig(CleanModel):
    """Everything that defines one agent version."""

    name: str = Field(min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=50_000)
    model: ModelSpec = Field(default_factory=ModelSpec)
    tools: list[ToolSpec] = Field(default_factory=list, max_length=64)
    memory: MemorySpec = Field(default_factory=MemorySpec)
    double_texting: DoubleTexting = Field(
        default="enqueue", description="What a message sent while a turn is running does."
    )
    parallel_tool_calls: StrictBool = Field(
        default=True,
        description="Run the tool calls of one model answer concurrently; false runs them one by one, in order.",
    )

    @field_validator("tools", mode="before")
    @classmethod
    def _names_to_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("tools")
    @classmethod
    def _unique(cls, value: list[ToolSpec]) -> list[ToolSpec]:
        names = [t.name for t in value]
        if len(names) != len(set(names)):
            raise ValueError("each tool may appear once")
        return value
