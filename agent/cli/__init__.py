"""The `smdiag` command line: thin typer functions over the library.

Settings are resolved once in the app callback; each command calls one library function and prints its
result as text or `--json`. Library errors become one line on stderr and an exit code (0 ok, 1 failed,
2 bad input), never a traceback; the traceback of an unexpected error goes to the log file.
Heavy modules are imported inside the commands so that start-up stays light.
Over 500 lines on purpose: it is the one table of commands, options and help texts a user reads with
`--help`; each function is a few lines over the library, and splitting it would scatter that table.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent import __version__
from agent.errors import BadInput, SmdiagError
from agent.redact import process_redactor

if TYPE_CHECKING:
    from agent.settings import Settings

PLAIN_HELP = {"rich_markup_mode": None}
"""Plain help text: rich markup would swallow bracketed text such as `[default: 85]`, and show flags as `<bool>`."""

app = typer.Typer(
    name="smdiag",
    help="Bootstrap and diagnostics for SageMaker notebook instances and local-mode Docker hosts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    **PLAIN_HELP,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DockerHostOption = Annotated[
    str | None,
    typer.Option(
        "--docker-host", metavar="URL", help="Docker engine URL (env DOCKER_HOST; default unix:///var/run/docker.sock)."
    ),
]


@dataclass
class Invocation:
    settings: Settings | None
    settings_error: BadInput | None
    """Bad settings are reported by the command, which knows whether to answer in JSON."""
    log_file: Path | None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smdiag {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Where logs, reports and state go (env SMDIAG_STATE_DIR; default <EBS mount>/.smdiag, "
            "else ~/.local/state/smdiag).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    import os

    from agent import log
    from agent.settings import Settings

    if state_dir is not None:
        # Every process smdiag starts follows the flag too: the failure recorder that local mode's wrapper
        # runs (`smdiag failures record`) knows the state dir only from its environment.
        os.environ["SMDIAG_STATE_DIR"] = str(state_dir)
    try:
        settings = Settings.load(state_dir=state_dir)
    except BadInput as exc:
        ctx.obj = Invocation(settings=None, settings_error=exc, log_file=None)
        return
    ctx.obj = Invocation(settings, None, log.configure(settings.log_file, verbose=verbose))


def _execute(ctx: typer.Context, as_json: bool, action: Callable[[Settings], tuple[int, Any, str]]) -> None:
    """Run a command body with the resolved settings and turn its outcome into output and an exit code.

    `action(settings)` returns (exit code, JSON-able result, text for people).
    """
    invocation: Invocation = ctx.obj
    try:
        if invocation.settings_error:
            raise invocation.settings_error
        # stdout carries the result alone: what libraries print meanwhile (the SageMaker SDK's log lines,
        # the containers' output it streams) goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            code, result, text = action(invocation.settings)
    except SmdiagError as exc:
        _fail(exc.one_line(), exc.exit_code, as_json, {"problem": exc.problem, "fix": exc.fix})
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become a line, not a traceback
        from agent.log import get_logger

        get_logger("cli").exception("command.crashed", command=ctx.info_name)
        if invocation.log_file:
            where = f"the traceback is in {invocation.log_file}"
        else:
            where = "no traceback kept: the state directory is not writable"
        problem = f"internal error: {type(exc).__name__}: {exc}"
        _fail(f"{problem} ({where})", 1, as_json, {"problem": problem, "fix": where})
    redactor = process_redactor()
    if as_json:
        typer.echo(json.dumps(redactor.value(result), indent=2, default=str))
    else:
        typer.echo(redactor.text(text))
    raise typer.Exit(code)


def _fail(line: str, code: int, as_json: bool, fields: dict) -> None:
    _print_error(line, code, as_json, fields)
    raise typer.Exit(code)


def _print_error(line: str, code: int, as_json: bool, fields: dict) -> None:
    """The one error line on stderr; with --json also the error as JSON on stdout."""
    redactor = process_redactor()
    if as_json:
        typer.echo(json.dumps(redactor.value({"ok": False, "exit_code": code, **fields})))
    typer.echo(f"smdiag: {redactor.text(line)}", err=True)


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Repair without asking.")]
BinDirOption = Annotated[
    Path | None,
    typer.Option(
        "--bin-dir",
        envvar="SMDIAG_BIN_DIR",
        metavar="DIR",
        help="Where the docker-compose shim goes (env SMDIAG_BIN_DIR; default /usr/local/bin).",
    ),
]
StopCmdOption = Annotated[
    str | None, typer.Option("--stop-cmd", metavar="COMMAND", help="Shell command that stops Docker.")
]
StartCmdOption = Annotated[
    str | None, typer.Option("--start-cmd", metavar="COMMAND", help="Shell command that starts Docker.")
]


@app.command()
def doctor(
    ctx: typer.Context,
    docker_host: DockerHostOption = None,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what can be repaired (see `smdiag fix`).")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="CHECK", help="With --fix: only compose, engine, network or docker_root."),
    ] = None,
    yes: YesOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --fix: say what it would do.")] = False,
    bin_dir: BinDirOption = None,
    stop_cmd: StopCmdOption = None,
    start_cmd: StartCmdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Check this host for SageMaker local mode: engine, compose, disks, SDK, AWS setup.

    Exit 0 when healthy, 1 when it found a problem (each printed with its fix).
    With --fix: exit 0 when no problem is left in the checks it repairs, 1 otherwise.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.engine import Engine
        from agent.host.doctor import format_report, run_doctor

        settings = settings.replace(docker_host=docker_host)
        if fix:
            from agent import fix as fixes

            options = _fix_options(bin_dir, dry_run, yes, stop_cmd, start_cmd, "10m")
            with Engine.for_settings(settings) as engine:
                code, result = fixes.run_doctor_fix(
                    settings, engine, options, set(only) if only else None, _confirm(yes), yes
                )
            return code, result, fixes.format_doctor_fix(result)
        if only or yes or dry_run:
            raise BadInput("--only, --yes and --dry-run go with --fix", "add --fix, or leave them out")

        with Engine.for_settings(settings) as engine:
            report = run_doctor(settings, engine)
        return (0 if report["healthy"] else 1), report, format_report(report)

    _execute(ctx, as_json, action)


@app.command()
def paths(
    ctx: typer.Context,
    shell: Annotated[
        bool, typer.Option("--shell", help="Print SMDIAG_*='...' assignments to eval in a shell script.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Print where smdiag keeps its state: the lifecycle script evals `smdiag paths --shell` rather than
    repeating the layout. Exit 0, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        if shell and as_json:
            raise BadInput("--shell and --json are two formats", "give one of them")
        assignments = settings.state.shell_assignments()
        if shell:
            return 0, assignments, settings.state.shell_script()
        width = max(map(len, assignments))
        return 0, assignments, "\n".join(f"{name:<{width}}  {value}" for name, value in assignments.items())

    _execute(ctx, as_json, action)


@app.command("fix")
def fix_command(
    ctx: typer.Context,
    report_id: Annotated[
        str | None, typer.Argument(metavar="REPORT_ID", help="A report's id (smdiag failures list).")
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="The newest report (the default).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would do; change nothing.")] = False,
    yes: YesOption = False,
    bin_dir: BinDirOption = None,
    stop_cmd: StopCmdOption = None,
    start_cmd: StartCmdOption = None,
    min_age: Annotated[
        str,
        typer.Option(
            "--min-age", metavar="DURATION", help="For a full disk: never prune images used less than this ago."
        ),
    ] = "10m",
    undo: Annotated[bool, typer.Option("--undo", help="Put back the files the newest fix changed.")] = False,
    docker_host: DockerHostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Repair the cause a failure report names (default: the newest), then check that it is gone.

    Exit 0 fixed and verified, 1 not fixed, 2 bad input, 3 no automatic remedy (the hint says what to do).
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent import fix as fixes

        settings = settings.replace(docker_host=docker_host)
        if undo:
            result = fixes.undo_last(settings)
            return 0, result, fixes.format_undo(result)
        if last and report_id:
            raise BadInput("give a REPORT_ID or --last, not both", "drop one of them")
        from agent.engine import Engine

        options = _fix_options(bin_dir, dry_run, yes, stop_cmd, start_cmd, min_age)
        with Engine.for_settings(settings) as engine:
            code, result = fixes.run_fix(settings, engine, report_id, options, _confirm(yes))
        return code, result, fixes.format_fix(result)

    _execute(ctx, as_json, action)


def _fix_options(bin_dir, dry_run: bool, yes: bool, stop_cmd, start_cmd, min_age: str):
    from agent.fix import DEFAULT_BIN_DIR, FixOptions

    if not (yes or dry_run or sys.stdin.isatty()):
        raise BadInput("no terminal to ask before repairing", "pass --yes to repair, or --dry-run to see the plan")
    return FixOptions(bin_dir or DEFAULT_BIN_DIR, dry_run, stop_cmd, start_cmd, min_age)


def _confirm(yes: bool):
    """Asks on the terminal (stderr) before a plan's changes, unless --yes."""

    def confirm(plan) -> bool:
        if yes:
            return True
        for step in plan.actions:
            typer.echo(f"  {step.detail}", err=True)
        return typer.confirm(f"{plan.remedy}: go ahead?", err=True)

    return confirm


@app.command()
def bootstrap(
    ctx: typer.Context,
    target: Annotated[
        Path | None,
        typer.Option("--target", metavar="DIR", help="Where the data-root goes (default <EBS mount>/docker)."),
    ] = None,
    daemon_config: Annotated[
        Path | None,
        typer.Option(
            "--daemon-config",
            metavar="FILE",
            help="dockerd's daemon.json (env SMDIAG_DOCKER_CONFIG; default /etc/docker/daemon.json).",
        ),
    ] = None,
    sysconfig: Annotated[
        Path | None,
        typer.Option(
            "--sysconfig",
            metavar="FILE",
            help="Amazon Linux OPTIONS file (env SMDIAG_SYSCONFIG; default /etc/sysconfig/docker).",
        ),
    ] = None,
    docker_host: DockerHostOption = None,
    stop_cmd: Annotated[
        str | None, typer.Option("--stop-cmd", metavar="COMMAND", help="Shell command that stops Docker.")
    ] = None,
    start_cmd: Annotated[
        str | None, typer.Option("--start-cmd", metavar="COMMAND", help="Shell command that starts Docker.")
    ] = None,
    reclaim: Annotated[bool, typer.Option("--reclaim", help="Delete the old data-root after a verified move.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    no_live_copy: Annotated[
        bool,
        typer.Option(
            "--no-live-copy", help="Stop Docker for the whole first copy (by default it runs during a first pass)."
        ),
    ] = False,
    finish: Annotated[
        str | None,
        typer.Option(
            "--finish",
            metavar="forward|back",
            help="End an interrupted move that left data in both trees: forward (use the new root) or back.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move Docker's data-root onto the EBS volume (first time), or re-point Docker at it (later boots).

    Exit 0 when done (or nothing to do), 1 when it failed and was rolled back, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent import platform
        from agent.bootstrap import Options, format_result, run_bootstrap
        from agent.engine import Engine
        from agent.host import studio

        if finish not in (None, "forward", "back"):
            raise BadInput(f"--finish {finish!r} is neither forward nor back", "use --finish forward or --finish back")
        options = Options(target, stop_cmd, start_cmd, reclaim, dry_run, finish, live_copy=not no_live_copy)
        settings = settings.replace(docker_host=docker_host, daemon_config=daemon_config, sysconfig=sysconfig)
        if (found := platform.detect(settings)).kind == platform.STUDIO:
            result = studio.bootstrap_result(found)
            return 0, result, result["why"]
        with Engine.for_settings(settings) as engine:
            with _progress_bar("copying the data-root", enabled=not as_json) as progress:
                result = run_bootstrap(settings, engine, options, progress)
        return 0, result, format_result(result)

    _execute(ctx, as_json, action)


@app.command("last-failure")
def last_failure(
    ctx: typer.Context,
    logs: Annotated[
        int, typer.Option("--logs", metavar="LINES", help="Container log lines to show per container.")
    ] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show the newest local-mode failure report: category, summary, hint, evidence.

    Exit 0 when one exists, 1 when none was recorded.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.failures.store import format_report, last_report

        if logs < 0:
            raise BadInput(f"--logs {logs} is negative", "give a number of lines, e.g. --logs 50")
        path, report = last_report(settings.state_dir)
        return 0, {**report, "path": str(path)}, f"report {path}\n" + format_report(report, logs)

    _execute(ctx, as_json, action)


failures_app = typer.Typer(help="Stored local-mode failure reports.", no_args_is_help=True, **PLAIN_HELP)
app.add_typer(failures_app, name="failures")


@failures_app.command("list")
def failures_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the stored failure reports, newest first. Exit 0."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.failures.store import list_reports

        reports = list_reports(settings.state_dir)
        lines = [f"{r['time']}  {r['call'] or '?':7} {r['category']:20} {r['summary']}" for r in reports]
        return 0, reports, "\n".join(lines) if lines else "no failures recorded"

    _execute(ctx, as_json, action)


@failures_app.command("record")
def failures_record(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Gather the evidence of a failure the wrapper captured (JSON on stdin) and store its report.

    The wrapper in a user's kernel calls this; exit 0 when stored, 2 when stdin is not a capture.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.failures import record

        fields = record.record(sys.stdin.read(), settings)
        return 0, fields, f"report {fields['path']}: {fields['category']}: {fields['summary']}"

    _execute(ctx, as_json, action)


@app.command()
def health(
    ctx: typer.Context,
    framework: Annotated[
        str,
        typer.Option("--framework", metavar="NAMES", help="all, tensorflow, pytorch or sklearn (comma-separated too)."),
    ] = "all",
    mode: Annotated[
        str, typer.Option("--mode", metavar="MODE", help="auto, native (no Docker, no AWS) or local (the SDK).")
    ] = "auto",
    sdk: Annotated[
        str,
        typer.Option("--sdk", metavar="MAJOR", help="Local mode's SDK: v2, v3 or auto (the one installed here)."),
    ] = "auto",
    quick: Annotated[bool, typer.Option("--quick", help="Few epochs, quick bar (RMSE <= 400).")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="FILE.png", help="Draw the data and each model's line to FILE.png.")
    ] = None,
    scripts: Annotated[
        Path | None,
        typer.Option("--scripts", metavar="DIR", help="Run your copies of the entry scripts from this directory."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, deploy and test the seed's three experiments (TensorFlow, PyTorch, scikit-learn).

    Exit 0 when every framework meets the bar, 1 otherwise, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.engine import Engine
        from agent.experiments.health import ENGINE_TIMEOUT_S, format_health, run_health

        chosen = _frameworks(framework)
        engine = Engine.for_settings(settings, timeout=ENGINE_TIMEOUT_S)
        with _interrupted_by_sigterm(), _health_progress(chosen) as progress, engine:
            report = run_health(chosen, mode, quick, scripts, settings, engine, plot, progress, sdk)
        return (0 if report["passed"] else 1), report, format_health(report)

    _execute(ctx, as_json, action)


data_app = typer.Typer(help="The seed's synthetic dataset.", no_args_is_help=True, **PLAIN_HELP)
app.add_typer(data_app, name="data")


@data_app.command("generate")
def data_generate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Directory for the four CSV files.")],
    as_json: JsonFlag = False,
) -> None:
    """Write all_data, training_data, validation_data and test_data CSVs (y, x; no header). Exit 0."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent import inputs
        from agent.experiments import data

        inputs.packages("data generate", data.MODULES)
        inputs.output_dir(out, "--out")
        rows = data.write(out)
        return 0, {"out": str(out), "rows": rows}, "\n".join(f"{out / name}: {n} rows" for name, n in rows.items())

    _execute(ctx, as_json, action)


@data_app.command("upload")
def data_upload(
    ctx: typer.Context,
    bucket: Annotated[str, typer.Option("--bucket", metavar="BUCKET", help="S3 bucket.")],
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="PREFIX", help="Key prefix; files go to PREFIX/synthetic/.")
    ] = "chapter03",
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", metavar="URL", help="S3-compatible endpoint.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate the dataset and upload it to s3://BUCKET/PREFIX/synthetic/. Exit 0, 1 when S3 refuses."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        import tempfile

        from botocore.exceptions import BotoCoreError, ClientError

        from agent import inputs
        from agent.errors import Failed
        from agent.experiments import data

        data.check_destination(bucket, endpoint_url)
        inputs.packages("data upload", data.MODULES)
        with tempfile.TemporaryDirectory() as work:
            data.write(Path(work))
            try:
                uris = data.upload(Path(work), bucket, prefix, endpoint_url)
            except (BotoCoreError, ClientError) as exc:
                raise Failed(
                    f"uploading to s3://{bucket}/{prefix} failed: {exc}", "check the bucket and your AWS credentials"
                ) from None
        return 0, {"uploaded": uris}, "\n".join(uris)

    _execute(ctx, as_json, action)


diskguard_app = typer.Typer(
    help="Keep Docker's disk under a threshold: prune least recently used images, never what is in use.",
    no_args_is_help=True,
    **PLAIN_HELP,
)
app.add_typer(diskguard_app, name="diskguard")

PathOption = Annotated[
    Path | None,
    typer.Option(
        "--path",
        metavar="PATH",
        help="Filesystem to watch (default: the one holding Docker's data-root; on a Studio space, the engine's "
        "own accounting against the home volume's size).",
    ),
]
HighOption = Annotated[
    float | None,
    typer.Option("--high", metavar="PCT", help="Prune above this used% (env SMDIAG_HIGH_PCT; default 85)."),
]
LowOption = Annotated[
    float | None,
    typer.Option("--low", metavar="PCT", help="Prune down to this used% (env SMDIAG_LOW_PCT; default 75)."),
]
KeepOption = Annotated[
    list[str] | None,
    typer.Option("--keep", metavar="REGEX", help="Never remove images whose repo:tag matches this regex (repeatable)."),
]
MinAgeOption = Annotated[
    str, typer.Option("--min-age", metavar="DURATION", help="Never remove images pulled less than this ago.")
]
ContainerAgeOption = Annotated[
    str,
    typer.Option(
        "--container-max-age", metavar="DURATION", help="Remove stopped containers older than this (logs saved first)."
    ),
]


def _policy(settings: Settings, high, low, keep, min_age, container_max_age):
    from agent.diskguard import Policy

    return Policy.build(
        settings.high_pct if high is None else high,
        settings.low_pct if low is None else low,
        keep or [],
        min_age,
        container_max_age,
    )


@diskguard_app.command("once")
def diskguard_once(
    ctx: typer.Context,
    path: PathOption = None,
    high: HighOption = None,
    low: LowOption = None,
    keep: KeepOption = None,
    min_age: MinAgeOption = "10m",
    container_max_age: ContainerAgeOption = "24h",
    docker_host: DockerHostOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be removed; remove nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Prune once: above the high watermark, remove until at the low one.

    Exit 0 when at or under high at the end, 1 when not (it says what holds the space), 2 on bad input.
    --dry-run forecasts the end state from the images' sizes and exits as the real run would.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.diskguard import format_outcome, run_once
        from agent.engine import Engine

        policy = _policy(settings, high, low, keep, min_age, container_max_age)
        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings) as engine:
            outcome = run_once(settings, engine, policy, path, dry_run)
        code = 0 if outcome.after_pct <= policy.high else 1  # a dry run exits as the real run would
        return code, outcome.to_dict(), format_outcome(outcome)

    _execute(ctx, as_json, action)


@diskguard_app.command("run")
def diskguard_run(
    ctx: typer.Context,
    path: PathOption = None,
    high: HighOption = None,
    low: LowOption = None,
    keep: KeepOption = None,
    min_age: MinAgeOption = "10m",
    container_max_age: ContainerAgeOption = "24h",
    docker_host: DockerHostOption = None,
    interval: Annotated[
        float, typer.Option("--interval", metavar="SECONDS", help="Seconds between checks without events.")
    ] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Guard continuously: react to pulls and container starts, check every --interval seconds.

    Stops cleanly on SIGTERM (exit 0); exit 1 when another guard already runs.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        import signal

        from agent.engine import Engine
        from agent.guard.daemon import Guard

        if interval <= 0:
            raise BadInput(f"--interval {interval:g} is not positive", "give a number of seconds, e.g. 60")
        policy = _policy(settings, high, low, keep, min_age, container_max_age)
        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings) as engine:
            guard = Guard(settings, engine, policy, path, interval)
            signal.signal(signal.SIGTERM, guard.shutdown)
            signal.signal(signal.SIGINT, guard.shutdown)
            guard.serve()
        return 0, {"stopped": True}, "diskguard: stopped"

    _execute(ctx, as_json, action)


@diskguard_app.command("status")
def diskguard_status(ctx: typer.Context, docker_host: DockerHostOption = None, as_json: JsonFlag = False) -> None:
    """Show what diskguard watches, measured now: the disk holding the engine's data-root, or on a Studio
    space the engine's own accounting (docker system df) against the home volume's size; beside it whether
    the guard runs and follows the engine's events, and its last check.

    Exit 0, or 1 when that usage is over the high watermark or the engine does not answer.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.engine import Engine
        from agent.guard.daemon import STATUS_TIMEOUT_S, format_status, status

        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings, timeout=STATUS_TIMEOUT_S) as engine:
            report = status(settings, engine)
        ok = report["error"] is None and report["used_pct"] <= settings.high_pct
        return (0 if ok else 1), report, format_status(report)

    _execute(ctx, as_json, action)


@diskguard_app.command("make-room")
def diskguard_make_room(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Option("--for", metavar="IMAGE", help="The image about to be pulled (REGISTRY/REPO:TAG).")
    ],
    path: PathOption = None,
    keep: KeepOption = None,
    min_age: MinAgeOption = "10m",
    container_max_age: ContainerAgeOption = "24h",
    docker_host: DockerHostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Before a pull: read the image's size from its registry and free that much room (plus a margin).

    Exit 0 when the room is there, 1 when it cannot be made (then nothing is removed), 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.diskguard import format_make_room, make_room
        from agent.engine import Engine

        policy = _policy(settings, None, None, keep, min_age, container_max_age)
        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings) as engine:
            result = make_room(settings, engine, policy, image, path)
        return (0 if result["ok"] else 1), result, format_make_room(result)

    _execute(ctx, as_json, action)


@diskguard_app.command("start")
def diskguard_start(
    ctx: typer.Context,
    docker_host: DockerHostOption = None,
    systemd: Annotated[
        bool | None,
        typer.Option("--systemd/--no-systemd", help="Run as a systemd unit (default: when systemd runs)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make sure exactly one `diskguard run` is active: a systemd unit (restarted on failure) where systemd
    runs, else a detached process. Safe to call at every boot.

    Exit 0 when the guard runs, 1 when it could not be started.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.guard.daemon import start

        result = start(settings.replace(docker_host=docker_host), systemd)
        how = "already running" if result["already_running"] else "started"
        return 0, result, f"diskguard {how} (pid {result['pid']}, {result['manager']})"

    _execute(ctx, as_json, action)


images_app = typer.Typer(
    help="SageMaker framework images for local mode, built offline (no registry) and tagged with the ECR URIs.",
    no_args_is_help=True,
    **PLAIN_HELP,
)
app.add_typer(images_app, name="images")


@images_app.command("build")
def images_build(
    ctx: typer.Context,
    framework: Annotated[
        str,
        typer.Option("--framework", metavar="NAMES", help="all, tensorflow, pytorch or sklearn (comma-separated too)."),
    ] = "all",
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            metavar="REGION",
            help="Tag with this region's URIs (default: env AWS_DEFAULT_REGION, else us-east-1).",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Retag a URI that names an image smdiag did not build.")
    ] = False,
    docker_host: DockerHostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the three frameworks' contract images (Debian python3 + the framework + `train`/`serve`), tagged
    with the exact URIs SDK v2 local mode resolves, so it never pulls. A no-op when they are current.

    Exit 0 when every image is ready, 1 when a build failed, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent import frameworks, images
        from agent.engine import Engine

        chosen = _frameworks(framework)
        engine = Engine.for_settings(settings.replace(docker_host=docker_host), timeout=images.ENGINE_TIMEOUT_S)
        with _steps("images build") as step, engine:
            result = images.build(
                engine,
                chosen,
                region or frameworks.region(),
                settings.cache_dir / "images",
                replace,
                step,
            )
        return 0, result, images.format_result(result)

    _execute(ctx, as_json, action)


kernels_app = typer.Typer(
    help="Failure reports in every notebook Python environment (a one-line .pth hook; no packages added).",
    no_args_is_help=True,
    **PLAIN_HELP,
)
app.add_typer(kernels_app, name="kernels")

EnvsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--envs",
        metavar="GLOB",
        help="Glob of environment directories, repeatable (env SMDIAG_CONDA_ENVS, space-separated; "
        "default /home/ec2-user/anaconda3 and its envs/*).",
    ),
]


@kernels_app.command("enable")
def kernels_enable(
    ctx: typer.Context,
    envs: EnvsOption = None,
    agent_python: Annotated[
        Path | None,
        typer.Option(
            "--agent-python", metavar="PYTHON", help="The interpreter that records reports (default: this one)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn the local-mode wrapper on in each environment's kernels; the hook loads only with the SDK.

    Exit 0 when every environment loads the hook, 1 when one does not, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.host import kernels

        result = kernels.enable(
            settings.state_dir, _env_patterns(envs, settings, True), agent_python or Path(sys.executable)
        )
        return (0 if result["ok"] else 1), result, kernels.format_result(result)

    _execute(ctx, as_json, action)


@kernels_app.command("disable")
def kernels_disable(ctx: typer.Context, envs: EnvsOption = None, as_json: JsonFlag = False) -> None:
    """Remove the hook from each environment and the hook directory (running kernels pass through). Exit 0."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.host import kernels

        result = kernels.disable(settings.state_dir, _env_patterns(envs, settings, False))
        return 0, result, kernels.format_result(result)

    _execute(ctx, as_json, action)


def _env_patterns(envs: list[str] | None, settings: Settings, none_is_failure: bool) -> list[str]:
    """The environment globs to act on. A given --envs that matches no environment is bad input (exit 2);
    the configured globs matching none is a failure (exit 1) when `none_is_failure`."""
    from agent.errors import Failed
    from agent.host import kernels

    patterns = envs or list(settings.conda_envs)
    if kernels.environments(patterns):
        return patterns
    if envs:
        raise BadInput(
            f"--envs {' '.join(envs)} matches no Python environment (a directory with bin/python)",
            "check the glob, e.g. --envs '/home/ec2-user/anaconda3/envs/*'",
        )
    if none_is_failure:
        raise Failed(
            f"no Python environment matches {' '.join(patterns)} (SMDIAG_CONDA_ENVS or the notebook default)",
            "set SMDIAG_CONDA_ENVS, or pass --envs GLOB",
        )
    return patterns


def _frameworks(given: str) -> list[str]:
    from agent.frameworks import FRAMEWORKS

    chosen = list(FRAMEWORKS) if given == "all" else [f.strip() for f in given.split(",")]
    unknown = [f for f in chosen if f not in FRAMEWORKS]
    if unknown or not chosen:
        raise BadInput(f"unknown framework {', '.join(unknown)!r}", "use all, tensorflow, pytorch or sklearn")
    return chosen


@contextlib.contextmanager
def _steps(command: str) -> Iterator[Callable[[str], None]]:
    """Yields step(text), shown on stderr: a spinner with the current step on a terminal, else one line
    per step (stdout keeps the result alone); the log has each step."""
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
def _interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does, so that its cleanup runs (no work directory left behind)."""
    import signal

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _health_progress(frameworks: list[str]) -> Iterator[Callable[[str, str, str], None]]:
    """Yields progress(framework, phase, detail) for `run_health`, shown on stderr: a live table of the
    frameworks on a terminal, else one line per phase (details at most every PROGRESS_LINE_S seconds)."""
    import time

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


PROGRESS_LINE_S = 10
"""Off a terminal, a phase's details (epoch, loss) are printed at most this often."""


@contextlib.contextmanager
def _progress_bar(description: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
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


GLOBAL_FLAGS = ("-v", "--verbose")
"""Options of the app itself that are also accepted after the subcommand (`smdiag doctor -v`)."""


def run() -> None:
    """Console-script entry point. Usage errors are one line too, and JSON on stdout with --json; exit 2."""
    errors = _click_exceptions()
    args = _global_flags_first(sys.argv[1:])
    try:
        code = typer.main.get_command(app).main(args, prog_name="smdiag", standalone_mode=False)
    except errors.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help())
        code = exc.exit_code
    except errors.ClickException as exc:
        context = getattr(exc, "ctx", None)
        fix = f"see `{context.command_path if context else 'smdiag'} --help`"
        problem = exc.format_message()
        _print_error(f"{problem} (fix: {fix})", exc.exit_code, "--json" in args, {"problem": problem, "fix": fix})
        code = exc.exit_code
    except typer.Abort:
        typer.echo("smdiag: interrupted", err=True)
        code = 130
    sys.exit(code or 0)


def _click_exceptions():
    """typer 0.29 and later carry their own copy of click; earlier ones use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def _global_flags_first(args: list[str]) -> list[str]:
    """Move the app's own flags (GLOBAL_FLAGS) before the subcommand, wherever they were given."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
