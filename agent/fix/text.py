"""What `smdiag doctor`, `smdiag doctor --fix`, `smdiag fix` and `smdiag fix --undo` print (their `--json` is
the result itself).

Doctor's text: a row per check under the name a person reads, each problem with its fix and the commands to
copy on lines of their own, the next steps, then the verdict with the next command. Marks and colour go to
a terminal only (agent.style): piped or in a file, the text is plain words.
"""

from __future__ import annotations

from typing import NamedTuple

from agent import disks
from agent.fix.doctor_fix import verdict
from agent.fix.run import NO_REMEDY
from agent.host import studio
from agent.host.doctor import WRAPPED_CALLS, check_name
from agent.style import PLAIN, Style, command_lines, problem_lines

# ---------------------------------------------------------------------------------------------- doctor


class Row(NamedTuple):
    check: str
    applies: bool
    text: str
    item: str | None = None
    """Which of the check's rows (a disk's role, an environment), for the problems and steps about it."""


def format_doctor(report: dict, style: Style = PLAIN) -> str:
    """The report as a person reads it: a row per check, each problem and next step with what to run, then
    the verdict. Plain marks: "ok" fine, "!!" a problem below, "->" a next step below, "--" not here."""
    rows = [*_engine_rows(report), *_disk_rows(report["disks"]), *_environment_rows(report)]
    rows += [Row(*row) for row in studio.rows(report.get("platform"), report.get("studio"))]
    named = [(row, check_name(row.check, row.item)) for row in rows]
    width = max(len(name) for _row, name in named)
    general = {row.check for row in rows if row.item is None}
    lines = [f"{style.mark(_row_state(row, report, general))} {name:<{width}}  {row.text}" for row, name in named]
    for problem in report["problems"]:
        lines += ["", *_problem_lines(problem, style)]
    for step in report.get("next_steps", []):
        lines += ["", f"{style.mark('next')} {check_name(step['check'])}: {step['step']}"]
        lines += command_lines(step["commands"], style) + ([f"   {step['then']}"] if step["then"] else [])
    return "\n".join([*lines, "", verdict_line(report, style)])


def _problem_lines(problem: dict, style: Style) -> list[str]:
    """A problem under its check's name (a disk's by its role), its fix, and the fix's commands."""
    return problem_lines(check_name(problem["check"], problem.get("item")), problem, style)


def verdict_line(report: dict, style: Style = PLAIN) -> str:
    """Ready or not for local mode, and the next command: `doctor --fix` when it repairs some problem."""
    found = verdict(report)
    count = found["problems"]
    if count:
        repairable = found["repairable"]
        if repairable:
            which = "it" if count == 1 else f"all {count} of them" if repairable == count else f"{repairable} of them"
            then = f"`{found['fix_command']}` repairs {which}" + (
                " (Docker restarts)" if found["restarts_docker"] else ""
            )
        else:
            then = f"fix {'it' if count == 1 else 'them'} as shown above, then run `smdiag doctor` again"
        line = f"not ready for SageMaker local mode: {count} problem{'s' if count > 1 else ''} — {then}"
        return style.verdict(line, ready=False)
    where = ", ".join(env["environment"] for env in report["sdk_environments"] if env["version"])
    line = f"ready for SageMaker local mode (the SDK is in {where})"
    steps = report.get("next_steps", [])
    with_commands = [step for step in steps if step["commands"]]
    if with_commands:
        step = with_commands[0]
        line += f" — next: `{step['commands'][0]}`" + (f", {step['then']}" if step["then"] else "")
    elif steps:
        line += f" — {len(steps)} next step{'s' if len(steps) > 1 else ''} above"
    return style.verdict(line, ready=True)


def _row_state(row: Row, report: dict, general: set[str]) -> str:
    """A problem about this row, else a next step about it, else fine or not applicable here. A problem
    about no row in particular is about its check's rows that have no item of their own (Studio's disks
    beside the notebook's), or about each of its check's rows when all have one (`general`: the checks
    with a row of no item)."""
    for problem in report["problems"]:
        item = problem.get("item")
        if problem["check"] == row.check and (item == row.item or (item is None and row.check not in general)):
            return "problem"
    if row.item and any(row.item in step["items"] for step in report.get("next_steps", [])):
        return "next"
    return "ok" if row.applies else "na"


def _engine_rows(report: dict) -> list[Row]:
    eng, comp, config, root = report["engine"], report["compose"], report["daemon_config"], report["docker_root"]
    if eng["reachable"]:
        store = ", containerd image store" if eng["containerd_image_store"] else ""
        engine_text = (
            f"Docker {eng['version']} (API {eng['api_version']}) at {eng['host']}, "
            f"data-root {eng['root_dir']} ({eng['storage_driver']}{store})"
        )
    else:
        engine_text = f"unreachable at {eng['host']}"
    compose_text = (
        f"SageMaker SDK v2 will run: {' '.join(comp['command'])}" if comp["command"] else "SageMaker SDK v2 finds none"
    )
    if not config["exists"]:
        config_text = f"{config['path']} (absent: Docker's defaults)"
    else:
        config_text = config["path"] + (f", data-root {config['data_root']}" if config["data_root"] else "")
    volume = "on the EBS volume" if root["on_ebs_volume"] else "on the root volume" if root["on_root_volume"] else ""
    return [
        Row("engine", eng["reachable"], engine_text),
        Row("compose", bool(comp["command"]), compose_text),
        Row("daemon_config", config["exists"], config_text),
        Row("docker_root", eng["reachable"], f"{root['path']} (from {root['source']}) {volume}".rstrip()),
    ]


def _disk_rows(disk_facts: list[dict]) -> list[Row]:
    rows = []
    for disk in disk_facts:
        if not disk["exists"]:
            rows.append(Row("disk", False, f"{disk['path']}: not present", disk["role"]))
            continue
        usage = (
            f"{disk['percent']:.0f}% used, {disks.human_bytes(disk['free'])} free of "
            f"{disks.human_bytes(disk['total'])} ({disk['device']} on {disk['mountpoint']})"
        )
        rows.append(Row("disk", True, f"{disk['path']}: {usage}", disk["role"]))
    return rows


def _environment_rows(report: dict) -> list[Row]:
    aws, nb = report["aws"], report["notebook"]
    credentials = f"from {aws['credentials_source']}" if aws["credentials"] else "none"
    if nb["is_notebook_instance"]:
        host_text = " ".join(
            filter(None, ["SageMaker notebook instance", nb["name"], f"({nb['platform'] or nb['os']})"])
        )
    else:
        host_text = f"not a SageMaker notebook instance ({nb['os'] or 'unknown OS'})"
    errors = report["wrapper"]["count"]
    return [
        *(
            Row("sagemaker_sdk", bool(env["version"]), _sdk_text(env), env["environment"])
            for env in report["sdk_environments"]
        ),
        Row(
            "aws",
            bool(aws["region"] or aws["credentials"]),
            f"region {aws['region'] or 'not set'}; credentials {credentials}",
        ),
        Row("host", nb["is_notebook_instance"], host_text),
        Row("state_dir", True, report["state_dir"]["path"]),
        Row("onstart", report["onstart"] is not None, _onstart_text(report["onstart"])),
        Row("wrapper", True, f"{errors} error{'' if errors == 1 else 's'} of its own logged in users' kernels"),
        *([_guard_row(report["guard"])] if report.get("guard") else []),
    ]


def _guard_row(guard: dict) -> Row:
    if guard["ended_pid"] is not None:
        return Row("guard", True, f"pid {guard['ended_pid']} ended without being stopped")
    if guard["pid"] is None:
        return Row("guard", False, "not running (smdiag diskguard start keeps Docker's disk under its threshold)")
    if guard["pid"] == -1:
        return Row("guard", True, "starting")
    if guard["events_lost_for_s"] is not None:
        return Row("guard", True, f"running (pid {guard['pid']}), without the engine's events for "
                                  f"{guard['events_lost_for_s']:.0f} s")  # fmt: skip
    return Row("guard", True, f"running (pid {guard['pid']})")


def _sdk_text(env: dict) -> str:
    where = env["environment"] + (" (smdiag's own)" if env["own"] else "")
    if not env["version"]:
        return f"{where}: not installed"
    covered = WRAPPED_CALLS.get(env["major"])
    if covered is None:
        return (
            f"{where}: sagemaker {env['version']} (major {env['major'] or '?'}, unknown to smdiag); "
            "the failure wrapper does not cover it: its local-mode failures are not reported"
        )
    if env["own"]:
        wrapper = "failure reports built in (smdiag health)"
    elif env.get("hook_loaded"):
        wrapper = f"failure reports on ({covered})"
    elif env["hook"]:
        wrapper = "failure reports off: the hook is there, but its python does not load it"
    else:
        wrapper = f"failure reports off (smdiag kernels enable would cover {covered})"
    return f"{where}: sagemaker {env['version']} (v{env['major']}); {wrapper}"


def _onstart_text(record: dict | None) -> str:
    if record is None:
        return "the lifecycle on-start script has not run here"
    steps = ", ".join(f"{s['step']} {s['state']}" for s in record["steps"])
    total = f" in {record['total_s']:g}s" if record["total_s"] is not None else " (unfinished)"
    background = f"; background migration {record['background']['state']}" if record["background"] else ""
    return f"last run {record['started']}{total}: {steps}{background}"


# ---------------------------------------------------------------------------------------------- fix


def format_fix(result: dict) -> str:
    lines = [f"report {result['report']}: {result['category']}: {result.get('summary') or ''}".rstrip()]
    if result["remedy"] is None:
        said = "no automatic remedy" if result["detail"] == NO_REMEDY else result["detail"]
        lines += [f"{said}; what to do:", f"  {result.get('hint')}"]
        return "\n".join(lines + ([result["doctor_fix"]] if result.get("doctor_fix") else []))
    lines += _format_outcome(result["remedy"], result)
    return "\n".join(lines)


def format_doctor_fix(result: dict, style: Style = PLAIN) -> str:
    lines = []
    for outcome in result["remedies"]:
        lines += _format_outcome(outcome["remedy"], outcome)
    lines += [f"suggested: {s}" for s in result["suggestions"]]
    if not result["remedies"]:
        lines.append("nothing to repair automatically")
    if result["problems"]:
        lines += ["", "found, nothing changed (dry run):" if result["dry_run"] else "still a problem:"]
        for problem in result["problems"]:
            lines += _problem_lines(problem, style)
    elif not result["dry_run"]:
        lines.append("no problem left" + ("" if result["healthy"] else " in the checks repaired"))
    return "\n".join(lines)


def _format_outcome(remedy: str, outcome: dict) -> list[str]:
    lines = [f"remedy: {remedy}" + (" (dry run: nothing changed)" if outcome.get("dry_run") else "")]
    for action in outcome["actions"]:
        mark = "done" if action["done"] else ("left" if action["kind"] == "leave" else "todo")
        lines.append(f"  [{mark}] {action['detail']}" + (f": {action['result']}" if action.get("result") else ""))
    if not outcome["actions"] and not outcome.get("blocked"):
        lines.append("  nothing to change")
    if outcome.get("blocked"):
        lines.append(f"  cannot repair: {outcome['blocked']}")
    elif not outcome.get("dry_run"):
        lines.append(f"  {'verified' if outcome['verified'] else 'NOT fixed'}: {outcome.get('detail')}")
    return lines


def format_undo(result: dict) -> str:
    return "\n".join([f"undid fix {result['run']}", *(f"  {u}" for u in result["undone"]),
                      *(f"  {k}" for k in result["not_undoable"])])  # fmt: skip
