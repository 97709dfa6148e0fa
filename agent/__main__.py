"""`python -m agent` runs the smdiag CLI."""

from agent.cli.main import run

run()
