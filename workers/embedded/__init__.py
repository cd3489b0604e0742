"""Embedded services for one machine: PostgreSQL, Redis, Temporal, and the supervisor."""
