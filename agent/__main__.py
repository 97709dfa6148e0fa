"""`python -m agent` runs the smdiag CLI."""

from agent.cli import run

run()
