"""The ``backchannel`` command line (typer)."""
