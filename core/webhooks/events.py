"""Event documents: ids stable across retries, the delivered JSON and its exact bytes.

An event is ``{"id", "type", "created_at" (RFC 3339), "data"}``; ``id`` is stable
across retries, so receivers can drop duplicates.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.ids import workflow_id


def event_id_for(run_id: str, event_type: str, key: str = "") -> str:
    """The event id: ``"<run id>:<type>"`` (``:<key>`` added for repeatable events such as approvals)."""
    return f"{run_id}:{event_type}" + (f":{key}" if key else "")


def event_payload(event_id: str, event_type: str, data: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """The JSON document delivered for one event."""
    return {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def event_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def delivery_workflow_id(tenant_id: str, delivery_id: str) -> str:
    """Workflow id of the delivery of one event to one webhook."""
    return workflow_id(tenant_id, "webhook", delivery_id)
