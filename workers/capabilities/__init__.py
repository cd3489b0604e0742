"""One module per capability, named as in workers/registry.py, each defining its ``SLICE``."""
