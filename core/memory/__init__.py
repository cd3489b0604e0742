"""Memory: thread context under a budget, long-term semantic memory, consolidation, erasure."""
