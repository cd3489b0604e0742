"""The optimizer: agents that improve themselves from feedback (domain logic, no Temporal).

``datasets`` builds the immutable, hashed, deterministically split example sets an
optimization run evaluates on; ``dataset_store`` keeps them per tenant; ``metrics`` scores an
output against an example (with a reason where it can).
"""
