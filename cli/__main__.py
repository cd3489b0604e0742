"""``python -m cli`` runs the ``aimpact`` command."""

from cli.main import app

app()
