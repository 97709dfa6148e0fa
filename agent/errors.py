"""One exception family for the library; the CLI turns it into one line and an exit code."""

from __future__ import annotations


class SmdiagError(Exception):
    """A failure the user can act on: what went wrong, and how to fix it."""

    exit_code = 1

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        return f"{self.problem} (fix: {self.fix})" if self.fix else self.problem


class BadInput(SmdiagError):
    """The request itself is wrong; nothing was changed."""

    exit_code = 2


class Failed(SmdiagError):
    """The request was valid but could not be carried out."""

    exit_code = 1
