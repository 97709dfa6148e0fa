"""The `smdiag` command line: thin typer functions over the library.

Settings are resolved once in the app callback; each command calls one library function and prints its
result as text or `--json`. Library errors become one line on stderr and an exit code (0 ok, 1 failed,
2 bad input), never a traceback; the traceback of an unexpected error goes to the log file.
Heavy modules are imported inside the commands so that start-up stays light.
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

app = typer.Typer(
    name="smdiag",
    help="Bootstrap and diagnostics for SageMaker notebook instances and local-mode Docker hosts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


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
        Path | None, typer.Option("--state-dir", help="Where logs, reports and state go [env: SMDIAG_STATE_DIR].")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    from agent import log
    from agent.settings import Settings

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
        where = f" (traceback in {invocation.log_file})" if invocation.log_file else ""
        _fail(f"internal error: {type(exc).__name__}: {exc}{where}", 1, as_json, {"problem": str(exc), "fix": None})
    redactor = process_redactor()
    if as_json:
        typer.echo(json.dumps(redactor.value(result), indent=2, default=str))
    else:
        typer.echo(redactor.text(text))
    raise typer.Exit(code)


def _fail(line: str, code: int, as_json: bool, fields: dict) -> None:
    redactor = process_redactor()
    if as_json:
        typer.echo(json.dumps(redactor.value({"ok": False, "exit_code": code, **fields})))
    typer.echo(f"smdiag: {redactor.text(line)}", err=True)
    raise typer.Exit(code)


@app.command()
def doctor(
    ctx: typer.Context,
    docker_host: Annotated[
        str | None, typer.Option("--docker-host", help="Docker engine URL [env: DOCKER_HOST].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check this host for SageMaker local mode: engine, compose, disks, SDK, AWS setup.

    Exit 0 when healthy, 1 when it found a problem (each printed with its fix).
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.doctor import format_report, run_doctor

        report = run_doctor(settings.replace(docker_host=docker_host))
        return (0 if report["healthy"] else 1), report, format_report(report)

    _execute(ctx, as_json, action)


@app.command()
def bootstrap(
    ctx: typer.Context,
    target: Annotated[
        Path | None, typer.Option("--target", help="Where the data-root goes [default: <EBS mount>/docker].")
    ] = None,
    daemon_config: Annotated[
        Path | None, typer.Option("--daemon-config", help="dockerd's daemon.json [default: /etc/docker/daemon.json].")
    ] = None,
    sysconfig: Annotated[
        Path | None, typer.Option("--sysconfig", help="Amazon Linux OPTIONS file [default: /etc/sysconfig/docker].")
    ] = None,
    docker_host: Annotated[
        str | None, typer.Option("--docker-host", help="Docker engine URL [env: DOCKER_HOST].")
    ] = None,
    stop_cmd: Annotated[str | None, typer.Option("--stop-cmd", help="Shell command that stops Docker.")] = None,
    start_cmd: Annotated[str | None, typer.Option("--start-cmd", help="Shell command that starts Docker.")] = None,
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
            help="End an interrupted move that left data in both trees: forward (use the new root) or back.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move Docker's data-root onto the EBS volume (first time), or re-point Docker at it (later boots).

    Exit 0 when done (or nothing to do), 1 when it failed and was rolled back, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.bootstrap import Options, format_result, run_bootstrap

        if finish not in (None, "forward", "back"):
            raise BadInput(f"--finish {finish!r} is neither forward nor back", "use --finish forward or --finish back")
        options = Options(target, stop_cmd, start_cmd, reclaim, dry_run, finish, live_copy=not no_live_copy)
        settings = settings.replace(docker_host=docker_host, daemon_config=daemon_config, sysconfig=sysconfig)
        with _progress_bar("copying the data-root", enabled=not as_json) as progress:
            result = run_bootstrap(settings, options, progress)
        return 0, result, format_result(result)

    _execute(ctx, as_json, action)


@app.command("last-failure")
def last_failure(
    ctx: typer.Context,
    logs: Annotated[int, typer.Option("--logs", help="Container log lines to show per container.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show the newest local-mode failure report: category, summary, hint, evidence.

    Exit 0 when one exists, 1 when none was recorded.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.failures import format_report, last_report

        if logs < 0:
            raise BadInput(f"--logs {logs} is negative", "give a number of lines, e.g. --logs 50")
        path, report = last_report(settings.state_dir)
        return 0, {**report, "path": str(path)}, f"report {path}\n" + format_report(report, logs)

    _execute(ctx, as_json, action)


failures_app = typer.Typer(help="Stored local-mode failure reports.", no_args_is_help=True)
app.add_typer(failures_app, name="failures")


@failures_app.command("list")
def failures_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the stored failure reports, newest first. Exit 0."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.failures import list_reports

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
        from agent import evidence

        try:
            capture = json.loads(sys.stdin.read())
            capture["call"], capture["started"], capture["exception"]  # noqa: B018 - the fields it needs
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInput(
                f"stdin is not a failure capture ({exc})", "pipe the JSON that agent.autowrap writes"
            ) from None
        directory, report = evidence.record(capture, settings)
        fields = {"path": str(directory), **{k: report[k] for k in ("id", "category", "summary", "hint")}}
        return 0, fields, f"report {directory}: {report['category']}: {report['summary']}"

    _execute(ctx, as_json, action)


@app.command()
def health(
    ctx: typer.Context,
    framework: Annotated[
        str, typer.Option("--framework", help="all, tensorflow, pytorch or sklearn (comma-separated too).")
    ] = "all",
    mode: Annotated[str, typer.Option("--mode", help="auto, native (no Docker, no AWS) or local (SDK v2).")] = "auto",
    quick: Annotated[bool, typer.Option("--quick", help="Few epochs, quick bar (RMSE <= 400).")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw the data and each model's line to FILE.png.")
    ] = None,
    scripts: Annotated[
        Path | None, typer.Option("--scripts", help="Run your copies of the entry scripts from this directory.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, deploy and test the seed's three experiments (TensorFlow, PyTorch, scikit-learn).

    Exit 0 when every framework meets the bar, 1 otherwise, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.experiments.health import format_health, run_health

        chosen = _frameworks(framework)
        if mode not in ("auto", "native", "local"):
            raise BadInput(f"unknown mode {mode!r}", "use auto, native or local")
        if plot is not None and plot.suffix.lower() != ".png":
            raise BadInput(f"--plot {plot} is not a .png file", "give a path ending in .png")
        report = run_health(chosen, mode, quick, scripts, settings, plot)
        return (0 if report["passed"] else 1), report, format_health(report)

    _execute(ctx, as_json, action)


data_app = typer.Typer(help="The seed's synthetic dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("generate")
def data_generate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory for the four CSV files.")],
    as_json: JsonFlag = False,
) -> None:
    """Write all_data, training_data, validation_data and test_data CSVs (y, x; no header). Exit 0."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.experiments import data

        rows = data.write(out)
        return 0, {"out": str(out), "rows": rows}, "\n".join(f"{out / name}: {n} rows" for name, n in rows.items())

    _execute(ctx, as_json, action)


@data_app.command("upload")
def data_upload(
    ctx: typer.Context,
    bucket: Annotated[str, typer.Option("--bucket", help="S3 bucket.")],
    prefix: Annotated[str, typer.Option("--prefix", help="Key prefix; files go to PREFIX/synthetic/.")] = "chapter03",
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="S3-compatible endpoint.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate the dataset and upload it to s3://BUCKET/PREFIX/synthetic/. Exit 0, 1 when S3 refuses."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        import tempfile

        from botocore.exceptions import BotoCoreError, ClientError

        from agent.errors import Failed
        from agent.experiments import data

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
)
app.add_typer(diskguard_app, name="diskguard")

PathOption = Annotated[
    Path | None, typer.Option("--path", help="Filesystem to watch [default: the one holding Docker's data-root].")
]
HighOption = Annotated[float | None, typer.Option("--high", help="Prune above this used% [env: SMDIAG_HIGH_PCT; 85].")]
LowOption = Annotated[float | None, typer.Option("--low", help="Prune down to this used% [env: SMDIAG_LOW_PCT; 75].")]
KeepOption = Annotated[
    list[str] | None, typer.Option("--keep", help="Never remove images whose repo:tag matches this regex (repeatable).")
]
MinAgeOption = Annotated[str, typer.Option("--min-age", help="Never remove images pulled less than this ago.")]
ContainerAgeOption = Annotated[
    str, typer.Option("--container-max-age", help="Remove stopped containers older than this (logs saved first).")
]
DockerHostOption = Annotated[str | None, typer.Option("--docker-host", help="Docker engine URL [env: DOCKER_HOST].")]


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
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.diskguard import format_outcome, run_once

        policy = _policy(settings, high, low, keep, min_age, container_max_age)
        outcome = run_once(settings.replace(docker_host=docker_host), policy, path, dry_run)
        code = 0 if dry_run or outcome.after_pct <= policy.high else 1
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
    interval: Annotated[float, typer.Option("--interval", help="Seconds between checks without events.")] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Guard continuously: react to pulls and container starts, check every --interval seconds.

    Stops cleanly on SIGTERM (exit 0); exit 1 when another guard already runs.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        import signal

        from agent.diskguard import Guard

        if interval <= 0:
            raise BadInput(f"--interval {interval:g} is not positive", "give a number of seconds, e.g. 60")
        policy = _policy(settings, high, low, keep, min_age, container_max_age)
        guard = Guard(settings.replace(docker_host=docker_host), policy, path, interval)
        signal.signal(signal.SIGTERM, guard.shutdown)
        signal.signal(signal.SIGINT, guard.shutdown)
        guard.serve()
        return 0, {"stopped": True}, "diskguard: stopped"

    _execute(ctx, as_json, action)


@diskguard_app.command("status")
def diskguard_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show whether the guard runs, the watched disk's usage and the last check.

    Exit 0, or 1 when the watched disk is over the high watermark.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.diskguard import format_status, status

        report = status(settings)
        over = report["used_pct"] is not None and report["used_pct"] > settings.high_pct
        return (1 if over else 0), report, format_status(report)

    _execute(ctx, as_json, action)


@diskguard_app.command("make-room")
def diskguard_make_room(
    ctx: typer.Context,
    image: Annotated[str, typer.Option("--for", help="The image about to be pulled (REGISTRY/REPO:TAG).")],
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

        policy = _policy(settings, None, None, keep, min_age, container_max_age)
        result = make_room(settings.replace(docker_host=docker_host), policy, image, path)
        return (0 if result["ok"] else 1), result, format_make_room(result)

    _execute(ctx, as_json, action)


@diskguard_app.command("start")
def diskguard_start(
    ctx: typer.Context,
    docker_host: DockerHostOption = None,
    systemd: Annotated[
        bool | None,
        typer.Option("--systemd/--no-systemd", help="Run as a systemd unit [default: when systemd runs]."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make sure exactly one `diskguard run` is active: a systemd unit (restarted on failure) where systemd
    runs, else a detached process. Safe to call at every boot.

    Exit 0 when the guard runs, 1 when it could not be started.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent.guard_service import start

        result = start(settings.replace(docker_host=docker_host), systemd)
        how = "already running" if result["already_running"] else "started"
        return 0, result, f"diskguard {how} (pid {result['pid']}, {result['manager']})"

    _execute(ctx, as_json, action)


images_app = typer.Typer(
    help="SageMaker framework images for local mode, built offline (no registry) and tagged with the ECR URIs.",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")


@images_app.command("build")
def images_build(
    ctx: typer.Context,
    framework: Annotated[
        str, typer.Option("--framework", help="all, tensorflow, pytorch or sklearn (comma-separated too).")
    ] = "all",
    region: Annotated[
        str | None,
        typer.Option("--region", help="Tag with this region's URIs [default: AWS_DEFAULT_REGION, us-east-1]."),
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
        from agent import images
        from agent.experiments import local

        chosen = _frameworks(framework)
        with _status(enabled=not as_json) as step:
            result = images.build(
                settings.replace(docker_host=docker_host).docker_host,
                chosen,
                region or local.region(),
                settings.cache_dir / "images",
                replace,
                step,
            )
        return 0, result, images.format_result(result)

    _execute(ctx, as_json, action)


kernels_app = typer.Typer(
    help="Failure reports in every notebook Python environment (a one-line .pth hook; no packages added).",
    no_args_is_help=True,
)
app.add_typer(kernels_app, name="kernels")

EnvsOption = Annotated[
    list[str] | None,
    typer.Option("--envs", help="Glob of environment directories (repeatable) [env: SMDIAG_CONDA_ENVS]."),
]


@kernels_app.command("enable")
def kernels_enable(
    ctx: typer.Context,
    envs: EnvsOption = None,
    agent_python: Annotated[
        Path | None,
        typer.Option("--agent-python", help="The interpreter that records reports [default: this one]."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn the local-mode wrapper on in each environment's kernels; the hook loads only with the SDK.

    Exit 0 when every environment loads the hook, 1 when one does not, 2 on bad input.
    """

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent import kernels

        result = kernels.enable(
            settings.state_dir, envs or list(settings.conda_envs), agent_python or Path(sys.executable)
        )
        return (0 if result["ok"] else 1), result, kernels.format_result(result)

    _execute(ctx, as_json, action)


@kernels_app.command("disable")
def kernels_disable(ctx: typer.Context, envs: EnvsOption = None, as_json: JsonFlag = False) -> None:
    """Remove the hook from each environment (they are then exactly as before). Exit 0."""

    def action(settings: Settings) -> tuple[int, Any, str]:
        from agent import kernels

        result = kernels.disable(envs or list(settings.conda_envs))
        return 0, result, kernels.format_result(result)

    _execute(ctx, as_json, action)


def _frameworks(given: str) -> list[str]:
    from agent.experiments import FRAMEWORKS

    chosen = list(FRAMEWORKS) if given == "all" else [f.strip() for f in given.split(",")]
    unknown = [f for f in chosen if f not in FRAMEWORKS]
    if unknown or not chosen:
        raise BadInput(f"unknown framework {', '.join(unknown)!r}", "use all, tensorflow, pytorch or sklearn")
    return chosen


@contextlib.contextmanager
def _status(enabled: bool) -> Iterator[Callable[[str], None]]:
    """Yields step(text): a spinner with the current step on a terminal's stderr; the log has each step."""
    from agent.log import get_logger

    log = get_logger("cli")
    if not (enabled and sys.stderr.isatty()):
        yield lambda text: log.info("step", step=text)
        return
    from rich.console import Console

    with Console(stderr=True).status("starting") as status:

        def step(text: str) -> None:
            log.info("step", step=text)
            status.update(text)

        yield step


@contextlib.contextmanager
def _progress_bar(description: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Yields an update(done, total) callback that shows a rich progress bar on stderr, when it is a
    terminal, from its first call (a run that never copies shows none)."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    bar = Progress(
        BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
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


def run() -> None:
    """Console-script entry point."""
    app(prog_name="smdiag")
