"""Prometheus metrics. Labels stay bounded: no ids, no user input."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "aimpact_http_requests_total", "HTTP requests by route template and status class.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "aimpact_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RUNS_STARTED = Counter("aimpact_runs_started_total", "Agent runs started through the API.")
RUNS_FINISHED = Counter("aimpact_runs_finished_total", "Agent runs that reached a final status.", ["status"])
RUN_DURATION = Histogram(
    "aimpact_run_duration_seconds",
    "Wall time from run start to final status.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
ACTIVITY_LATENCY = Histogram(
    "aimpact_activity_duration_seconds", "Activity execution time by activity type.", ["activity", "outcome"]
)
LLM_TOKENS = Counter("aimpact_llm_tokens_total", "LLM tokens by provider and direction.", ["provider", "direction"])
APPROVALS_WAITING = Gauge(
    "aimpact_approvals_waiting",
    "Human approvals requested by runs and not yet decided (set by the process that tracks approvals).",
)
WEBHOOK_DELIVERIES_DROPPED = Counter(
    "aimpact_webhook_deliveries_dropped_total",
    "Webhook deliveries recorded as dropped, not sent: their tenant had too many deliveries in flight.",
)
VOICE_STAGE_LATENCY = Histogram(
    "aimpact_voice_stage_duration_seconds",
    "Time per stage of a voice turn (vad, stt, agent, tts; streamed turns also endpoint, agent_first_token,"
    " tts_first_audio and first_audio: end of speech to first reply audio) and the whole turn (total),"
    " once per recorded turn.",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
VOICE_AUDIO = Histogram(
    "aimpact_voice_audio_seconds",
    "Seconds of audio per voice turn: what the user said (user) and the spoken reply (reply).",
    ["side"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60),
)
VOICE_TURNS = Counter(
    "aimpact_voice_turns_total",
    "Voice turns recorded, by outcome (completed, silent, interrupted, failed).",
    ["status"],
)
VOICE_SESSIONS_STARTED = Counter("aimpact_voice_sessions_started_total", "Voice sessions started through the API.")
VOICE_SESSIONS_ENDED = Counter(
    "aimpact_voice_sessions_ended_total",
    "Voice sessions that ended, by reason (ended, idle, cancelled, …).",
    ["reason"],
)
