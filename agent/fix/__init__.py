"""`smdiag fix` and `smdiag doctor --fix`: from a diagnosis to its repair.

`choose_remedy` maps a failure report's category and evidence to a remedy (pure). A remedy then gathers
the facts it needs at the moment it runs (edges: the engine, PATH, files), plans its actions from them
(`plan_*`, pure), carries them out, and verifies that the cause is gone by measuring it again. Nothing
is removed that cannot be proved SageMaker local mode's own: anything else is named and left alone.
Every change registers its undo (agent.journal) before it is made: a file's backup, a shim we create;
what cannot be undone (an engine object removed) is recorded as such. A fix, finished or killed, is kept
in `<state>/fix/journal.jsonl`, and `smdiag fix --undo` replays the newest one's undo. Re-running a fix
that worked does nothing.
Over 500 lines because each remedy keeps its facts, pure plan, action and verification side by side (a
remedy is read, reviewed and tested as one unit); the shared machinery is in agent.journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import BadInput, Failed, SmdiagError
from agent.journal import Journal, append_line, read_lines, replay

if TYPE_CHECKING:
    from agent.engine import Engine

DEFAULT_BIN_DIR = Path("/usr/local/bin")
NETWORK = "sagemaker-local"
SHIM_MARK = "# smdiag compose shim"
SHIM = f"""#!/bin/sh
{SHIM_MARK}: SageMaker SDK v2 accepts the `docker compose` plugin only when its version says "v2";
# this `docker-compose` hands every call to the plugin. Written by `smdiag fix`; `smdiag fix --undo` removes it.
if [ -n "${{SMDIAG_COMPOSE_SHIM:-}}" ]; then
    echo "docker-compose (smdiag shim): \\`docker compose\\` called docker-compose again; not looping" >&2
    exit 1
fi
SMDIAG_COMPOSE_SHIM=1 exec docker compose "$@"
"""
VERIFY_TIMEOUT_S = 30
FULL_PCT = 95
"""A disk at least this full when the failure was recorded is the one that ran out."""
PORT_ERROR = re.compile(r"(?:0\.0\.0\.0|\[::\]|127\.0\.0\.1)?:(\d+) failed: port is already allocated|"
                        r"listen tcp[46]? [^:]*:(\d+): bind: address already in use")  # fmt: skip
ENGINE_DEFAULT_OPTIONS = {"com.docker.network.enable_ipv4", "com.docker.network.enable_ipv6"}
"""Options newer engines list on every network they create."""
# What SDK v2 local mode names its objects: a mkdtemp() working dir, `<10 random>-algo-<n>-<5 random>`.
SDK_WORKDIR = re.compile(r"^tmp[a-z0-9_]{8}$")
SDK_CONTAINER = re.compile(r"^[a-z0-9]{10}-(algo-\d+-[a-z0-9]{5})$")
REMEDIES = {
    "container_root_full": "container_root",
    "compose_unrecognised": "compose_shim",
    "network_conflict": "stale_network",
    "port_in_use": "leftover_containers",
}


@dataclass(frozen=True)
class Action:
    kind: str
    """write_shim, remove_network, remove_container, free_disk, set_container_root, start_engine, run_bootstrap;
    `leave` names something that stands in the way and is not touched."""
    target: str
    detail: str

    @property
    def changes(self) -> bool:
        return self.kind != "leave"


@dataclass
class Plan:
    remedy: str
    actions: list[Action] = field(default_factory=list)
    blocked: str | None = None
    """Why this remedy cannot repair it here (then nothing is changed)."""


@dataclass(frozen=True)
class FixOptions:
    bin_dir: Path = DEFAULT_BIN_DIR
    dry_run: bool = False
    stop_cmd: str | None = None
    start_cmd: str | None = None
    """Shell commands that stop and start Docker [default: systemd, else `service docker`], as bootstrap's."""
    min_age: str = "10m"
    """How recently used an image may be and still be pruned for room (diskguard's --min-age)."""


Confirm = Callable[[Plan], bool]


# ---------------------------------------------------------------------------------------------- pure


def choose_remedy(report: dict) -> str | None:
    """The remedy for a report's cause, from its category and evidence; None when none is automatic."""
    category = report.get("category")
    if category == "daemon_down":
        error = str((report.get("docker") or {}).get("error") or report.get("summary") or "").lower()
        return None if "permission denied" in error else "start_engine"
    if category == "disk_full":
        return {"docker_root": "free_disk", "container_root": "container_root"}.get(_full_disk_role(report))
    return REMEDIES.get(category)


def _full_disk_role(report: dict) -> str | None:
    """Which of our disks filled: the data-root when a pull ran out of room, else the one the report saw full
    (the SDK's container_root before the data-root); None when neither was (a disk inside the container)."""
    if any("no space left" in (p.get("error") or "").lower() for p in report.get("pull_errors") or []):
        return "docker_root"
    for role in ("container_root", "docker_root"):
        disk = next((d for d in report.get("disks") or [] if d.get("role") == role), None)
        if disk and disk.get("percent") is not None and disk["percent"] >= FULL_PCT:
            return role
    return None


def serving_port(report: dict) -> int:
    """The port the engine could not bind, from its own error line; the SDK's default otherwise."""
    text = "\n".join([(report.get("exception") or {}).get("message", ""), *(report.get("compose_output") or []),
                      *((c.get("error") or "") for c in report.get("containers") or [])])  # fmt: skip
    found = PORT_ERROR.search(text)
    return int(found.group(1) or found.group(2)) if found else 8080


def is_local_mode_container(name: str, labels: dict) -> bool:
    """Provably made by SageMaker local mode: compose's project labels name a docker-compose.yaml in an SDK
    temporary directory, and the container and service carry the names the SDK generates."""
    workdir = labels.get("com.docker.compose.project.working_dir") or ""
    config = labels.get("com.docker.compose.project.config_files") or ""
    named = SDK_CONTAINER.match(name)
    return bool(
        named
        and labels.get("com.docker.compose.service") == named.group(1)
        and SDK_WORKDIR.match(os.path.basename(workdir.rstrip("/")))
        and config == os.path.join(workdir, "docker-compose.yaml")
        and labels.get("com.docker.compose.project") == os.path.basename(workdir.rstrip("/"))
    )


def network_problem(attrs: dict) -> str | None:
    """Why a `sagemaker-local` network is not one Compose made for local mode (Compose v2+ refuses such a
    network, and v1 refuses one whose driver or options differ); None when it is."""
    labels = attrs.get("Labels") or {}
    if labels.get("com.docker.compose.network") != NETWORK:
        return "it carries no label com.docker.compose.network=sagemaker-local (Compose did not make it)"
    if attrs.get("Driver") != "bridge":
        return f"its driver is {attrs.get('Driver')!r}, not bridge"
    options = sorted(set(attrs.get("Options") or {}) - ENGINE_DEFAULT_OPTIONS)
    if options:
        return f"it has driver options Compose did not set ({', '.join(options)})"
    if attrs.get("Internal") or attrs.get("EnableIPv6"):
        return "it is internal or IPv6-enabled, which Compose did not set"
    return None


def plan_compose_shim(choice: dict, bin_dir: Path, existing: str | None, bin_dir_on_path: bool) -> Plan:
    plan = Plan("compose_shim")
    shim = bin_dir / "docker-compose"
    if choice["docker_cli"] is None:
        plan.blocked = "there is no docker CLI on PATH: install Docker's CLI first"
    elif choice["command"] is not None:
        pass  # SDK v2 finds a Compose it accepts: nothing to do
    elif not choice["plugin_version"]:
        plan.blocked = "there is no Compose plugin (`docker compose version` fails): install Docker Compose"
    elif existing is not None and SHIM_MARK not in existing:
        plan.blocked = f"{shim} exists and is not smdiag's shim: it is left alone"
    elif not bin_dir_on_path:
        plan.blocked = f"{bin_dir} is not on PATH, so SDK v2 would not find a shim there: choose --bin-dir on PATH"
    elif existing != SHIM:
        seen = choice["plugin_version"]
        plan.actions.append(Action("write_shim", str(shim), f"write {shim}: runs `docker compose` ({seen})"))
    return plan


def plan_stale_network(network: dict | None, refused: bool, users: list[str]) -> Plan:
    """`refused`: compose itself refused this network in the report's evidence."""
    plan = Plan("stale_network")
    if network is None:
        return plan
    why = network_problem(network) or ("Compose refused it" if refused else None)
    if why is None:
        return plan
    if users:
        plan.actions += [
            Action("leave", name, f"container {name} uses network {NETWORK}: not touched") for name in users
        ]
        plan.blocked = f"network {NETWORK} ({why}) is in use by {', '.join(users)}: stop them, then run again"
        return plan
    plan.actions.append(Action("remove_network", NETWORK, f"remove network {NETWORK}: {why}"))
    return plan


def plan_leftover_containers(port: int, holders: list[dict], own: set[str], port_free: bool) -> Plan:
    """holders: [{name, labels}] of containers publishing `port`."""
    plan = Plan("leftover_containers")
    for holder in holders:
        name = holder["name"]
        if name in own:
            plan.actions.append(Action("leave", name, f"container {name} is the failing call's own: not touched"))
        elif is_local_mode_container(name, holder["labels"]):
            plan.actions.append(
                Action("remove_container", name, f"stop and remove {name}: a local-mode container left on port {port}")
            )
        else:
            plan.actions.append(
                Action("leave", name, f"container {name} holds port {port} but was not made by local mode: not touched")
            )
    if not any(a.changes for a in plan.actions) and not port_free:
        holders_text = ", ".join(h["name"] for h in holders) or "a process outside Docker"
        plan.blocked = f"port {port} is held by {holders_text}, which smdiag cannot prove is local mode's"
    return plan


def plan_start_engine(answers: bool, how: str) -> Plan:
    plan = Plan("start_engine")
    if not answers:
        plan.actions.append(Action("start_engine", how, f"start Docker ({how}) and wait until it answers"))
    return plan


def doctor_remedies(report: dict, only: set[str] | None, allow_bootstrap: bool) -> tuple[list[str], list[str]]:
    """(remedies to apply, suggestions) for what doctor found; `only` limits them to those checks. Pure."""
    wanted: list[tuple[str, str]] = []
    suggestions = []
    problems = {p["check"] for p in report["problems"]}
    comp, eng = report["compose"], report["engine"]
    if "compose" in problems and comp["docker_cli"] and comp["plugin_version"]:
        wanted.append(("compose", "compose_shim"))
    if not eng["reachable"] and "permission denied" not in str(eng.get("error")).lower():
        wanted.append(("engine", "start_engine"))
    if eng["reachable"]:
        wanted.append(("network", "stale_network"))
    if "docker_root" in problems:
        if allow_bootstrap:
            wanted.append(("docker_root", "bootstrap"))
        elif only is None or "docker_root" in only:
            suggestions.append("Docker's data-root is on the root volume: `smdiag doctor --fix --yes` or "
                               "`sudo smdiag bootstrap` moves it onto the EBS volume (Docker restarts)")  # fmt: skip
    return [remedy for check, remedy in wanted if only is None or check in only], suggestions


DOCTOR_CHECKS = ("compose", "engine", "network", "docker_root")


def run_doctor_fix(
    settings, engine: Engine, options: FixOptions, only: set[str] | None, confirm: Confirm, yes: bool
) -> tuple[int, dict]:
    """Apply the remedies for what doctor finds, then ask doctor again. Exit 0 when no problem in scope
    remains (or, dry, when every remedy could run), 1 otherwise."""
    from agent.host.doctor import run_doctor

    _check_options(options)
    if only and not only <= set(DOCTOR_CHECKS):
        raise BadInput(f"--only {','.join(sorted(only))}: unknown check", f"choose from {', '.join(DOCTOR_CHECKS)}")
    before = run_doctor(settings, engine)
    remedies, suggestions = doctor_remedies(before, only, allow_bootstrap=yes)
    applied = []
    for remedy in remedies:
        outcome = apply_remedy(settings, engine, remedy, {"id": None, "compose_output": []}, options, confirm)
        if outcome["actions"] or outcome["blocked"]:
            applied.append({"remedy": remedy, **outcome})
    after = before if options.dry_run else run_doctor(settings, engine)
    remaining = [p for p in after["problems"] if only is None or p["check"] in only]
    result = {"healthy": after["healthy"], "remedies": applied, "suggestions": suggestions,
              "problems": remaining, "dry_run": options.dry_run}  # fmt: skip
    failed = any(not r["verified"] for r in applied if not options.dry_run) or any(r["blocked"] for r in applied)
    code = 1 if failed or (remaining and not options.dry_run) else 0
    return code, result


# ---------------------------------------------------------------------------------------------- fix


def load_report(state_dir: Path, report_id: str | None) -> tuple[Path, dict]:
    from agent.failures import store as failures

    if report_id is None:
        return failures.last_report(state_dir)
    path = failures.failures_dir(state_dir) / report_id
    if "/" in report_id or not (path / "report.json").is_file():
        raise BadInput(f"there is no failure report {report_id!r}", "list them with `smdiag failures list`")
    try:
        return path, json.loads((path / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"report {report_id} is unreadable: {exc}", "pick another with `smdiag failures list`") from None


def run_fix(settings, engine: Engine, report_id: str | None, options: FixOptions, confirm: Confirm) -> tuple[int, dict]:
    """Repair the cause a report names. (exit code, result): 0 fixed and verified, 1 not, 3 no remedy."""
    _check_options(options)
    _path, report = load_report(settings.state_dir, report_id)
    remedy = choose_remedy(report)
    result = {"report": report.get("id"), "category": report.get("category"), "summary": report.get("summary"),
              "remedy": remedy, "actions": [], "verified": False, "dry_run": options.dry_run}  # fmt: skip
    if remedy is None:
        result.update(hint=report.get("hint"), detail="no automatic remedy for this cause")
        return 3, result
    outcome = apply_remedy(settings, engine, remedy, report, options, confirm)
    result.update(outcome)
    return (0 if result["verified"] or (options.dry_run and not outcome.get("blocked")) else 1), result


def apply_remedy(settings, engine: Engine, remedy: str, report: dict, options: FixOptions, confirm: Confirm) -> dict:
    """Plan, confirm, act (journaled), verify: {actions, blocked, verified, detail}."""
    from agent import fileops

    with fileops.exclusive_lock(settings.state.fix / "lock"):
        plan = PLANNERS[remedy](settings, engine, report, options)
        outcome = {"actions": [{**asdict(a), "done": False} for a in plan.actions], "blocked": plan.blocked,
                   "verified": False, "detail": plan.blocked}  # fmt: skip
        if plan.blocked or options.dry_run:
            return outcome
        changes = [a for a in plan.actions if a.changes]
        if changes and not confirm(plan):
            outcome["detail"] = "not confirmed: nothing changed"
            return outcome
        if changes and not _act(settings, engine, remedy, report, options, plan, outcome):
            return outcome
        outcome["verified"], outcome["detail"] = VERIFIERS[remedy](settings, engine, report, options)
    return outcome


def _act(settings, engine: Engine, remedy: str, report: dict, options: FixOptions, plan: Plan, outcome: dict) -> bool:
    """Carry out the plan's changes in one journaled run, kept in the history whether it ends well, fails
    or is interrupted (a failed step leaves the earlier ones done: `--undo` takes them back). Whether all
    steps were done."""
    journal = _open_journal(settings)
    run = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    journal.begin(run=run, time=time.time(), report=report.get("id"), remedy=remedy, actions=[])
    try:
        for entry, action in zip(outcome["actions"], plan.actions, strict=True):
            if not action.changes:
                continue
            step = _Step(journal, action)
            try:
                entry["result"] = ACTORS[action.kind](settings, engine, action, options, step)
            except Exception as exc:  # noqa: BLE001 - one failed step ends the fix, said as such, not as a traceback
                from agent.log import get_logger  # not at the top: the failure recorder imports choose_remedy

                get_logger("fix").exception("fix.action_failed", kind=action.kind, target=action.target)
                problem = exc.one_line() if isinstance(exc, SmdiagError) else f"{type(exc).__name__}: {exc}"
                entry["result"] = f"failed: {problem}"
                outcome["detail"] = f"{action.detail}: failed: {problem}"
                return False
            step.note(done=True)
            entry["done"] = True
    finally:
        journal.commit(_history(settings))
    return True


def _check_options(options: FixOptions) -> None:
    if not options.bin_dir.is_absolute():
        raise BadInput(
            f"--bin-dir {options.bin_dir} is not an absolute path", "give the full path, e.g. /usr/local/bin"
        )
    from agent.diskguard import parse_duration

    parse_duration(options.min_age, "--min-age")


# ---------------------------------------------------------------------------------------------- remedies


def _plan_compose_shim(settings, engine: Engine, report, options: FixOptions) -> Plan:
    from agent.host import compose

    shim = options.bin_dir / "docker-compose"
    existing = None
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        existing = shim.read_text(errors="replace")
    on_path = any(_same_dir(entry, options.bin_dir) for entry in os.environ.get("PATH", "").split(os.pathsep))
    return plan_compose_shim(compose.probe_compose().to_dict(), options.bin_dir, existing, on_path)


def _write_shim(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    from agent import fileops

    path = Path(action.target)
    with contextlib.suppress(FileNotFoundError):
        if SHIM_MARK not in path.read_text(errors="replace"):
            raise Failed(f"{path} appeared meanwhile and is not smdiag's shim: left alone", "look at what wrote it")
    step.will("created", path=str(path), mark=SHIM_MARK)
    fileops.atomic_write(path, SHIM, mode=0o755)
    return f"wrote {path}"


def _verify_compose(settings, engine: Engine, report, options) -> tuple[bool, str]:
    from agent.host import compose

    choice = compose.probe_compose()
    if choice.command is None:
        return False, "SageMaker SDK v2 still finds no Compose it accepts"
    try:
        done = subprocess.run([*choice.command, "version"], capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{' '.join(choice.command)} version` failed: {exc}"
    first = (done.stdout.strip().splitlines() or [""])[0]
    if done.returncode != 0:
        return False, f"`{' '.join(choice.command)} version` exited {done.returncode}: {done.stderr.strip()[-200:]}"
    return True, f"SageMaker SDK v2 will run `{' '.join(choice.command)}` ({first})"


def _plan_stale_network(settings, engine: Engine, report, options) -> Plan:
    import docker.errors

    from agent.failures.classify import NETWORK_REFUSED

    refused = bool(NETWORK_REFUSED.search("\n".join(report.get("compose_output") or [])))
    client = engine.client
    try:
        network = client.api.inspect_network(NETWORK)
    except docker.errors.NotFound:
        return plan_stale_network(None, refused, [])
    users = [c["Name"] for c in (network.get("Containers") or {}).values()]
    # A stopped container is no endpoint, yet would lose its network: it counts, unless it is one that local
    # mode left behind (SDK v2 never removes its containers, nor starts them again).
    stopped = client.containers.list(all=True, filters={"network": NETWORK})
    users += [c.name for c in stopped if c.name not in users and not is_local_mode_container(c.name, c.labels)]
    return plan_stale_network(network, refused, users)


def _remove_network(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    network = engine.client.networks.get(action.target)
    step.note(
        removed={"id": network.id, "labels": network.attrs.get("Labels"), "options": network.attrs.get("Options")}
    )
    network.remove()
    return f"removed network {action.target}"


def _verify_network(settings, engine: Engine, report, options) -> tuple[bool, str]:
    import docker.errors

    try:
        network = engine.client.api.inspect_network(NETWORK)
    except docker.errors.NotFound:
        return True, f"no network {NETWORK}: local mode's Compose creates its own"
    why = network_problem(network)
    return (why is None), (why or f"network {NETWORK} is Compose's own")


def _plan_leftover_containers(settings, engine: Engine, report, options) -> Plan:
    port = serving_port(report)
    own = {c["name"] for c in report.get("containers") or []}
    running = engine.client.containers.list()
    holders = [{"name": c.name, "labels": c.labels} for c in running if _publishes(c.attrs, port)]
    return plan_leftover_containers(port, holders, own, port_free(port))


def _publishes(attrs: dict, port: int) -> bool:
    bindings = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    return any(str(b.get("HostPort")) == str(port) for spec in bindings.values() for b in spec or [])


def _remove_container(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    from agent import container_logs

    container = engine.client.containers.get(action.target)
    step.note(removed={"id": container.id, "image": container.attrs.get("Config", {}).get("Image")})
    logs = container_logs.save(container, settings.state.fix / "logs" / f"{container.name}.log")
    container.stop(timeout=10)
    container.remove()
    return f"removed container {action.target} (its log kept in {logs})"


def _verify_port(settings, engine: Engine, report, options) -> tuple[bool, str]:
    port = serving_port(report)
    return (True, f"port {port} is free") if port_free(port) else (False, f"port {port} is still taken")


def port_free(port: int) -> bool:
    """Whether the serving port can be bound as the engine binds it (all interfaces), measured now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _plan_start_engine(settings, engine: Engine, report, options: FixOptions) -> Plan:
    how = f"`{options.start_cmd}`" if options.start_cmd else _detected(settings, engine).describe()
    return plan_start_engine(engine.answers(), how)


def _detected(settings, engine: Engine):
    from agent.service import detect_service

    return detect_service(None, None, settings.systemd_run_dir, engine)


def _start_engine(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    from agent.service import DockerService

    if options.start_cmd:
        docker_service = DockerService(
            "custom", ("sh", "-c", options.stop_cmd or "true"), ("sh", "-c", options.start_cmd), engine
        )
    else:
        docker_service = _detected(settings, engine)
    docker_service.start()
    return f"Docker answers after {docker_service.daemon_seconds:.1f}s"


def _verify_engine(settings, engine: Engine, report, options) -> tuple[bool, str]:
    if engine.answers():
        return True, f"the engine answers at {engine.host}"
    return False, f"the engine does not answer at {engine.host}"


def _plan_free_disk(settings, engine: Engine, report, options: FixOptions) -> Plan:
    images = [i for i in (report.get("call") or {}).get("images") or [] if i]
    plan = Plan("free_disk")
    for image in images:
        plan.actions.append(Action("free_disk", image, f"free the room {image} needs (diskguard make-room)"))
    plan.actions.append(
        Action("free_disk", "", f"prune least recently used images down to {settings.low_pct:g}% (diskguard policy)")
    )
    return plan


def _policy(settings, options: FixOptions):
    from agent.diskguard import Policy

    return Policy.build(settings.high_pct, settings.low_pct, [], options.min_age, "24h")


def _free_disk(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    from agent import diskguard, disks

    if action.target:
        result = diskguard.make_room(settings, engine, _policy(settings, options), action.target, None)
        freed = max(0, result.get("free_after", 0) - result.get("free_before", 0))
        step.note(removed=[r["id"] for r in result["removed"]])
        if result["present"]:
            return f"{action.target} is already here"
        return f"freed {disks.human_bytes(freed)} for {action.target}" + (
            "" if result["ok"] else f": {result['problem']}"
        )
    outcome = diskguard.run_once(settings, engine, _policy(settings, options), None, False)
    step.note(removed=[r["id"] for r in outcome.removed])
    freed = sum(r["bytes"] for r in outcome.removed)
    return f"freed {disks.human_bytes(freed)}: {outcome.before_pct:.0f}% -> {outcome.after_pct:.0f}% used"


def _verify_disk(settings, engine: Engine, report, options: FixOptions) -> tuple[bool, str]:
    import docker.errors

    from agent import diskguard
    from agent.guard import registry

    root = engine.describe().root_dir
    usage = diskguard.usage_of(Path(root))
    missing = []
    for image in [i for i in (report.get("call") or {}).get("images") or [] if i]:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.client.images.get(image)
            continue
        insecure = engine.client.info().get("RegistryConfig", {}).get("InsecureRegistryCIDRs") or []
        try:
            needed = registry.image_size(image, insecure).room_needed
        except Exception:  # noqa: BLE001 - an image we cannot size is not our verdict's business
            continue
        if usage.avail < needed:
            missing.append(image)
    if missing:
        return False, f"still not enough room for {', '.join(missing)}"
    if usage.percent > settings.high_pct:
        return False, f"{root} is still {usage.percent:.0f}% full (above {settings.high_pct:g}%)"
    return True, f"{root} is {usage.percent:.0f}% full, with room for the call's images"


def _plan_container_root(settings, engine: Engine, report, options) -> Plan:
    from agent.bootstrap import LOCAL_MODE_DIR, local_mode_config

    plan = Plan("container_root")
    path, target = settings.sagemaker_config, settings.ebs_mount / LOCAL_MODE_DIR
    if not settings.ebs_mount.is_dir():
        plan.blocked = f"there is no EBS volume at {settings.ebs_mount} to put local mode's files on"
        return plan
    text = None
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text()
    try:
        wanted = local_mode_config(text, str(target))
    except ValueError as exc:
        plan.blocked = f"{path} is not a SageMaker config smdiag can edit ({exc}): set local.container_root by hand"
        return plan
    if wanted is not None:
        plan.actions.append(Action("set_container_root", str(path), f"set local.container_root to {target} in {path}"))
    return plan


def _set_container_root(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    from agent import bootstrap, fileops

    path = Path(action.target)
    saved = fileops.backup(path)
    step.will("restore", path=str(path), backup=str(saved) if saved else None)
    written, skipped = bootstrap.write_local_mode_config(settings)
    if not written:
        raise Failed(f"{path} was not written: {skipped[0]['why'] if skipped else 'unknown'}", "set it by hand")
    return f"wrote {written}"


def _verify_container_root(settings, engine: Engine, report, options) -> tuple[bool, str]:
    plan = _plan_container_root(settings, engine, report, options)
    if plan.blocked or plan.actions:
        return False, plan.blocked or "local.container_root is still not on the EBS volume"
    return True, f"local mode keeps its files under {settings.ebs_mount}"


def _plan_bootstrap(settings, engine: Engine, report, options) -> Plan:
    plan = Plan("bootstrap")
    plan.actions.append(
        Action(
            "run_bootstrap",
            str(settings.ebs_mount),
            f"move Docker's data-root onto {settings.ebs_mount} (smdiag bootstrap)",
        )
    )
    return plan


def _run_bootstrap(settings, engine: Engine, action: Action, options: FixOptions, step: _Step) -> str:
    from agent.bootstrap import Options, format_result, run_bootstrap

    result = run_bootstrap(settings, engine, Options(stop_cmd=options.stop_cmd, start_cmd=options.start_cmd))
    return format_result(result).splitlines()[0]


def _verify_bootstrap(settings, engine: Engine, report, options) -> tuple[bool, str]:
    from agent.host.doctor import run_doctor

    root = run_doctor(settings, engine)["docker_root"]
    return bool(root["on_ebs_volume"]), f"Docker's data-root is {root['path']}"


PLANNERS = {
    "compose_shim": _plan_compose_shim,
    "stale_network": _plan_stale_network,
    "leftover_containers": _plan_leftover_containers,
    "start_engine": _plan_start_engine,
    "free_disk": _plan_free_disk,
    "container_root": _plan_container_root,
    "bootstrap": _plan_bootstrap,
}
ACTORS = {
    "write_shim": _write_shim,
    "remove_network": _remove_network,
    "remove_container": _remove_container,
    "start_engine": _start_engine,
    "free_disk": _free_disk,
    "set_container_root": _set_container_root,
    "run_bootstrap": _run_bootstrap,
}
VERIFIERS = {
    "compose_shim": _verify_compose,
    "stale_network": _verify_network,
    "leftover_containers": _verify_port,
    "start_engine": _verify_engine,
    "free_disk": _verify_disk,
    "container_root": _verify_container_root,
    "bootstrap": _verify_bootstrap,
}


def _same_dir(entry: str, directory: Path) -> bool:
    try:
        return bool(entry) and os.path.samefile(entry, directory)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- journal


class _Step:
    """What one action tells the fix's journal: the undo of a change it is about to make, or facts (what it
    removed, which cannot be put back)."""

    def __init__(self, journal: Journal, action: Action) -> None:
        self.journal = journal
        self.record = {"kind": action.kind, "target": action.target, "undoable": False}
        journal.record(actions=[*journal.data["actions"], self.record])

    def will(self, kind: str, **undo) -> None:
        self.record["undoable"] = True
        self.journal.will(kind, **undo)

    def note(self, **fields) -> None:
        self.record.update(fields)
        self.journal.record()


def _open_journal(settings) -> Journal:
    """The fix journal; a run killed before it was kept in the history is kept there now (its changes
    stay, as a failed run's do, for `--undo`)."""
    journal = Journal(settings.state.fix / "journal.json")
    if journal.load() is not None:
        journal.commit(_history(settings))
    return journal


def _history(settings) -> Path:
    return settings.state.fix / "journal.jsonl"


def undo_last(settings) -> dict:
    """Replay the newest fix's undo: a shim it created is removed (if still ours), a config it edited is
    restored from its backup. Engine objects it removed are named, not recreated."""
    from agent import fileops

    with fileops.exclusive_lock(settings.state.fix / "lock"):
        _open_journal(settings)
        history = _history(settings)
        runs = read_lines(history)
        undone = {r["run"] for r in runs if r.get("undone")}
        pending = [r for r in runs if "undo" in r and r["run"] not in undone]
        if not pending:
            raise Failed(f"no fix to undo in {history}", "nothing was changed by smdiag fix")
        last = pending[-1]
        done = replay(last["undo"])
        kept = [
            f"{a['kind']} {a['target']}: not undoable (engine state), left as is"
            for a in reversed(last["actions"])
            if not a["undoable"]
        ]
        append_line(history, {"run": last["run"], "undone": True, "time": time.time()})
    return {"run": last["run"], "undone": done, "not_undoable": kept}


# ---------------------------------------------------------------------------------------------- text


def format_fix(result: dict) -> str:
    lines = [f"report {result['report']}: {result['category']}: {result.get('summary') or ''}".rstrip()]
    if result["remedy"] is None:
        return "\n".join([*lines, "no automatic remedy; what to do:", f"  {result.get('hint')}"])
    lines += _format_outcome(result["remedy"], result)
    return "\n".join(lines)


def format_doctor_fix(result: dict) -> str:
    lines = []
    for outcome in result["remedies"]:
        lines += _format_outcome(outcome["remedy"], outcome)
    lines += [f"suggested: {s}" for s in result["suggestions"]]
    if not result["remedies"]:
        lines.append("nothing to repair automatically")
    if result["problems"]:
        lines += ["", "still a problem:"] + [
            f"  {p['check']}: {p['problem']}\n    fix: {p['fix']}" for p in result["problems"]
        ]
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
