"""Client commands of ``aimpact``: a running API's runs, agents, tenants, users, keys, tools, webhooks,
memories and secrets, through :mod:`aimpact_client` (never the platform's internals)."""
