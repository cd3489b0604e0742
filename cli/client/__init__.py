"""Client commands of ``aimpact``: a running API's runs, agents, tenants, users, keys, tools, webhooks,
memories, secrets, pipelines and recommendations, through :mod:`aimpact_client` (never the platform's internals)."""
