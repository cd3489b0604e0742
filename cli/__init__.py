"""The ``aimpact`` command line."""
