"""How doctor's reports look (`smdiag doctor`, `doctor --fix`, `doctor --remote`): a mark per row, each problem with
its fix and commands, the verdict. Marks and colour go to a terminal only: piped or in a file, the text is plain
words. Standard library only, so that `doctor --remote` loads none of the local checks to print its rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

MARKS = {
    "ok": ("ok", "✓", "green"),
    "problem": ("!!", "✗", "red"),
    "next": ("->", "!", "yellow"),
    "na": ("--", "-", "dim"),
    "unknown": ("??", "?", "yellow"),
}
"""Each row's state: its plain mark, its mark on a terminal, and its colour there."""
SGR = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}
COMMAND_INDENT = " " * 6


@dataclass(frozen=True)
class Style:
    """Marks and colour for a terminal (colour unless NO_COLOR is set); plain words for a pipe or a file."""

    terminal: bool = False
    colour: bool = False

    @classmethod
    def for_output(cls, is_terminal: bool, environ: Mapping[str, str] = os.environ) -> Style:
        terminal = is_terminal and environ.get("TERM") != "dumb"
        return cls(terminal, terminal and "NO_COLOR" not in environ)

    def mark(self, state: str) -> str:
        plain, glyph, colour = MARKS[state]
        return self.paint(glyph.ljust(len(plain)), colour) if self.terminal else plain

    def paint(self, text: str, colour: str) -> str:
        return f"\033[{SGR[colour]}m{text}\033[0m" if self.colour else text

    def verdict(self, line: str, ready: bool) -> str:
        """The verdict's line: marked and in its colour on a terminal, the words alone elsewhere."""
        state, colour = ("ok", "green") if ready else ("problem", "red")
        return f"{self.mark(state)} {self.paint(line, colour)}" if self.terminal else line


PLAIN = Style()


def problem_lines(name: str, problem: Mapping, style: Style = PLAIN) -> list[str]:
    """A problem under the name of its check, its fix, and the fix's commands each on a line of its own."""
    head = f"{style.mark('problem')} {name}: {problem['problem']}"
    return [head, f"   fix: {problem['fix']}", *command_lines(problem.get("commands", ()), style)]


def command_lines(commands: list[str] | tuple[str, ...], style: Style) -> list[str]:
    """Commands to copy, each on a line of its own, in bold on a terminal."""
    return [COMMAND_INDENT + style.paint(command, "bold") for command in commands]
