"""``python -m mlefit``."""

from .cli import app

app(prog_name="mlefit")
