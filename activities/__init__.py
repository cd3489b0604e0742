"""Temporal activities: adapters over ``core`` with idempotency, heartbeats and error mapping."""
