"""The optimizer: datasets, metrics, candidates, evaluation and promotion of agent versions."""
