"""Serve the terminal UI in a web browser with textual-serve (``inittui serve TARGET``).

Each browser tab runs ``command`` (e.g. ``"inittui sample_models/mlp.py:MLP"``) in its own
process; the server only relays the terminal.
"""

from __future__ import annotations


def serve(
    command: str,
    host: str = "localhost",
    port: int = 8000,
    title: str | None = None,
    public_url: str | None = None,
) -> None:
    """Run a local web server that opens ``command`` per browser session (until Ctrl+C)."""
    from textual_serve.server import Server

    server = Server(command, host=host, port=port, title=title or "inittui", public_url=public_url)
    server.serve()
