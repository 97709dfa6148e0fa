"""`smdiag doctor` (check the host, `--fix` what it can; `--remote`: a managed job's preflight) and `smdiag paths`
(where the state lives)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, execute
from agent.cli.cmdoptions import BinDirOption, DockerHostOption, JsonFlag, StartCmdOption, StopCmdOption, YesOption
from agent.cli.commands.fix import ask_first, fix_options
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).


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
    remote: Annotated[
        bool,
        typer.Option("--remote", help="Instead: before a managed job, read-only checks against AWS (quota, role...)."),
    ] = False,
    instance_type: Annotated[
        str | None, typer.Option("--instance-type", metavar="TYPE", help="With --remote: e.g. ml.g5.xlarge.")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", metavar="ARN", help="With --remote: the execution role's ARN.")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", metavar="URI", help="With --remote: the image URI.")] = None,
    region: Annotated[
        str | None, typer.Option("--region", metavar="REGION", help="With --remote (default: the AWS config's).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check this host for SageMaker local mode: engine, compose, disks, SDK, AWS setup.

    Ends with the verdict and the next command. Exit 0 when ready, 1 when it found a problem (each printed
    with its fix). With --fix: exit 0 when no problem is left in the checks it repairs, 1 otherwise.
    With --remote, nothing local: before a managed job spends money, the instance type's SageMaker quotas and
    what running jobs use of them, the type offered in the region, the execution role and its trust of
    SageMaker, the default bucket's region, the image's account and region (read-only, within seconds;
    a check it may not read says which permission it needs). Exit 0 when nothing stands in the way, 1 when
    something does or AWS does not answer, 2 on bad input.
    """
    on_terminal = sys.stdout.isatty()  # asked here: while the command runs, its stdout goes to stderr
    remote_only = {"--instance-type": instance_type, "--role": role, "--image": image, "--region": region}

    def action(settings: Settings) -> Outcome:
        from agent.style import Style

        style = Style.for_output(on_terminal)
        if remote:
            local = {"--fix": fix, "--only": only, "--yes": yes, "--dry-run": dry_run, "--docker-host": docker_host,
                     "--stop-cmd": stop_cmd, "--start-cmd": start_cmd}  # fmt: skip
            if given := [flag for flag, value in local.items() if value]:
                verb = "checks" if len(given) == 1 else "check"
                raise BadInput(f"{', '.join(given)} {verb} this host, not AWS", "leave them out with --remote")
            from agent.remote.preflight import Request, format_preflight, run_preflight

            report = run_preflight(Request(instance_type, role, image, region))
            return (0 if report["healthy"] else 1), report, format_preflight(report, style)
        if given := [flag for flag, value in remote_only.items() if value is not None]:
            verb = "goes" if len(given) == 1 else "go"
            raise BadInput(f"{', '.join(given)} {verb} with --remote", "add --remote, or leave them out")
        from agent.engine import Engine

        settings = settings.replace(docker_host=docker_host)
        if fix:
            from agent.fix.doctor_fix import run_doctor_fix
            from agent.fix.text import format_doctor_fix

            options = fix_options(bin_dir, dry_run, yes, stop_cmd, start_cmd, "10m")
            with Engine.for_settings(settings) as engine:
                code, result = run_doctor_fix(
                    settings, engine, options, set(only) if only else None, ask_first(yes), yes
                )
            return code, result, format_doctor_fix(result, style)
        if only or yes or dry_run:
            raise BadInput("--only, --yes and --dry-run go with --fix", "add --fix, or leave them out")

        from agent.fix.doctor_fix import verdict
        from agent.fix.text import format_doctor
        from agent.host.doctor import run_doctor

        with Engine.for_settings(settings) as engine:
            report = run_doctor(settings, engine)
        report["verdict"] = verdict(report)
        return (0 if report["healthy"] else 1), report, format_doctor(report, style)

    execute(ctx, as_json, action)


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

    def action(settings: Settings) -> Outcome:
        if shell and as_json:
            raise BadInput("--shell and --json are two formats", "give one of them")
        assignments = settings.state.shell_assignments()
        if shell:
            return 0, assignments, settings.state.shell_script()
        width = max(map(len, assignments))
        return 0, assignments, "\n".join(f"{name:<{width}}  {value}" for name, value in assignments.items())

    execute(ctx, as_json, action)
