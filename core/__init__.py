"""AImPact's domain library: settings, contracts, data, models, tools, telemetry.

``core`` imports no other top-level package of the project.
"""
