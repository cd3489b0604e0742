"""Authentication: JWT access tokens, refresh tokens, login throttling."""
