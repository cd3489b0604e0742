"""Tools an agent can call, each with JSON-schema parameters."""
