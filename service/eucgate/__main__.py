"""`python -m eucgate` is the `eucgate` command."""

from eucgate.cli.main import app

app()
