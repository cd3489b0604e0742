"""Agent configuration validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.agents import AgentConfig


def test_tool_names_and_objects_are_accepted() -> None:
    config = AgentConfig.model_validate(
        {"name": "a", "tools": ["calculator", {"name": "current_time", "requires_approval": True, "timeout_s": 5}]}
    )
    assert [t.name for t in config.tools] == ["calculator", "current_time"]
    assert config.tools[1].requires_approval is True
    assert config.model.provider == "local"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"name": "a", "tools": ["no spaces allowed"]}, ("tools", 0, "name")),
        ({"name": "a", "tools": ["calculator", "calculator"]}, ("tools",)),
        ({"name": "a", "model": {"provider": "skynet"}}, ("model", "provider")),
        ({"name": "a", "model": {"provider": "local", "api_key": "sk-x"}}, ("model", "api_key")),
        ({"name": ""}, ("name",)),
        ({"name": "a", "model": {"params": {"latency_ms": 10**9}}}, ("model", "params")),
        ({"name": "a", "model": {"params": {"max_attempts": 0}}}, ("model", "params")),
        ({"name": "a", "tenant_id": "ten_other"}, ("tenant_id",)),
    ],
)
def test_invalid_configs_name_the_field(body: dict[str, object], location: tuple[object, ...]) -> None:
    with pytest.raises(ValidationError) as error:
        AgentConfig.model_validate(body)
    assert any(tuple(e["loc"])[: len(location)] == location for e in error.value.errors()), error.value.errors()
