"""Example bodies of the main requests, shown (and sent by "Try it out") in the API explorer.

Keyed by the request schema's name; each is a valid request a new tenant can send as is.
"""

from __future__ import annotations

from typing import Any

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "AgentConfig": {
        "name": "support-assistant",
        "instructions": "Answer briefly and politely. Use the tools when a question needs them.",
        "model": {"provider": "local", "name": "local-echo"},
        "tools": ["calculator"],
        "double_texting": "enqueue",
    },
    "RunCreate": {
        "input": "What is 2 + 2?",
        "subject": "customer-42",
        "metadata": {"channel": "web"},
    },
    "MessageCreate": {"input": "And times 3?"},
    "ToolCreate": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "method": "GET",
        "url": "https://weather.example.com/v1/current?city={city}",
        "headers": {"Authorization": "Bearer {{secret:WEATHER_KEY}}"},
    },
    "WebhookCreate": {"url": "https://hooks.example.com/aimpact", "events": ["run.completed", "run.failed"]},
    "SecretCreate": {"name": "WEATHER_KEY", "value": "replace-with-the-real-key"},
    "UserCreate": {"email": "ada@example.com", "password": "a long passphrase", "role": "operator"},
    "ApiKeyCreate": {"name": "ci-pipeline", "role": "operator"},
    "TokenRequest": {"email": "ada@example.com", "password": "a long passphrase"},
    "DatasetCreate": {
        "name": "good-answers-november",
        "from_runs": {"min_score": 0.8, "since": "2026-11-01T00:00:00Z", "limit": 500},
        "examples": [
            {"input": "What is 2 + 2?", "expected": "4"},
            {"input": "What is 3 * 5?", "expected": "15"},
            {"input": "Is 7 prime?", "rubric": "Says yes and explains why in one sentence."},
        ],
    },
}
