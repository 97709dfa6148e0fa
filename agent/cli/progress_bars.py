"""What a long command shows on stderr while it works (stdout keeps the result alone).

On a terminal, rich's live displays; elsewhere (a log, a CI job) plain lines; the log has each step either
way. rich and agent.log are imported inside the functions: `smdiag --help` and the commands that show no
progress never load them (start-up time).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import typer

PROGRESS_LINE_S = 10
"""Off a terminal, a phase's details (epoch, loss) are printed at most this often."""


@contextlib.contextmanager
def steps(command: str) -> Iterator[Callable[[str], None]]:
    """Yields step(text), shown on stderr: a spinner with the current step on a terminal, else one line
    per step."""
    from agent.log import get_logger

    log = get_logger("cli")
    if not sys.stderr.isatty():

        def line(text: str) -> None:
            log.info("step", step=text)
            typer.echo(f"{command}: {text}", err=True)

        yield line
        return
    from rich.console import Console

    with Console(stderr=True).status("starting") as status:

        def step(text: str) -> None:
            log.info("step", step=text)
            status.update(text)

        yield step


@contextlib.contextmanager
def health_progress(frameworks: list[str]) -> Iterator[Callable[[str, str, str], None]]:
    """Yields progress(framework, phase, detail) for `run_health`, shown on stderr: a live table of the
    frameworks on a terminal, else one line per phase (details at most every PROGRESS_LINE_S seconds)."""
    from agent.log import get_logger

    log = get_logger("cli")
    if not sys.stderr.isatty():
        last_line: dict[str, tuple[str, float]] = {}
        held: dict[str, tuple[str, str]] = {}  # a detail not printed yet: shown when its phase ends

        def show(framework: str, phase: str, detail: str) -> None:
            typer.echo(f"health: {framework}: {phase}" + (f" ({detail})" if detail else ""), err=True)

        def line(framework: str, phase: str, detail: str) -> None:
            log.info("health.progress", framework=framework, phase=phase, detail=detail)
            previous_phase, shown = last_line.get(framework, ("", 0.0))
            if phase == previous_phase and time.monotonic() - shown < PROGRESS_LINE_S:
                held[framework] = (phase, detail)
                return
            if phase != previous_phase and framework in held:
                show(framework, *held[framework])  # how the phase ended: the last epoch and loss
            held.pop(framework, None)
            last_line[framework] = (phase, time.monotonic())
            show(framework, phase, detail)

        yield line
        return

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    rows = {framework: ("waiting", "") for framework in frameworks}
    started = time.monotonic()

    def table() -> Table:
        view = Table(title=f"smdiag health ({time.monotonic() - started:.0f}s)", title_justify="left")
        for column in ("framework", "phase", "detail"):
            view.add_column(column)
        for framework, (phase, detail) in rows.items():
            view.add_row(framework, phase, detail)
        return view

    with Live(get_renderable=table, console=Console(stderr=True), refresh_per_second=2, transient=True) as live:

        def update(framework: str, phase: str, detail: str) -> None:
            log.info("health.progress", framework=framework, phase=phase, detail=detail)
            rows[framework] = (phase, detail)
            live.refresh()

        yield update


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Yields an update(done, total) callback that shows a rich progress bar on stderr, when it is a
    terminal, from its first call (a run that never copies shows none)."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    tasks: list = []

    def update(done: int, total: int) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task(description, total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()
