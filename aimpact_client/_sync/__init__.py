"""The synchronous client, generated from ``_async/`` (``python -m aimpact_client._unasync``)."""
