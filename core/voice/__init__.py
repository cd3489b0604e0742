"""Voice sessions without Temporal: sessions and turns in PostgreSQL, recordings, speech engines, erasure."""
