"""The asynchronous client (source of the synchronous one: ``python -m aimpact_client._unasync``)."""
