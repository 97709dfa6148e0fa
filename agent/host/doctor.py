"""`smdiag doctor`: is this host ready for SageMaker local mode, and if not, what to do about it.

`gather` touches the edges (engine, filesystems, compose CLI, AWS config, and each notebook environment's
interpreter, started to see it load the failure-report hook); `diagnose` and `next_steps` are pure and turn
the gathered facts into problems, each with its fix, and steps worth taking though local mode runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from agent import disks, platform
from agent.engine import Engine
from agent.errors import SmdiagError
from agent.guard.state import guard_facts
from agent.host import compose, kernels, onstart, sdk, studio
from agent.host import facts as host
from agent.log import get_logger
from agent.settings import DEFAULT_DOCKER_ROOT, Settings

log = get_logger("doctor")

DISK_ROLES = {"docker_root": "Docker data-root", "tmp": "temp dir", "ebs": "EBS volume"}
DISK_FIXES = {
    "docker_root": "prune the least recently used images with smdiag diskguard once, or keep them pruned with "
    "smdiag diskguard run",
    "tmp": "delete what local mode left in the temp dir: it stages data and model artifacts there",
    "ebs": "increase the notebook's volume size: stop the notebook, then Edit, Volume size; or delete files from it",
}
DISK_COMMANDS = {"docker_root": ("smdiag diskguard once",)}

CHECK_NAMES = {
    "engine": "Docker engine",
    "compose": "Docker Compose",
    "daemon_config": "Docker config",
    "docker_root": "Docker data-root",
    "sagemaker_sdk": "SageMaker SDK",
    "aws": "AWS setup",
    "host": "host",
    "state_dir": "smdiag state",
    "onstart": "on-start script",
    "wrapper": "failure wrapper",
    "failure_reports": "failure reports",
    "platform": "platform",
    "studio": "Studio app",
    "engine_disk": "Docker disk use",
    "guard": "disk guard",
    "disk": "space disk",
}
"""What a person reads for each check id (`--json` keeps the ids)."""
DISK_NAMES = {**DISK_ROLES, "docker_root": "Docker's disk"}
"""A disk row's name: its role, but Docker's data-root is a check of its own."""

EVENTS_GRACE_S = 90
"""How long a guard may be without the engine's events while its engine answers: it retries every 30 s at most."""

HOOK_CHECKS_AT_ONCE = 16
"""Environments whose interpreter is started at the same time to see whether it loads the hook."""

WRAPPED_CALLS = {
    2: "fit, deploy, predict, transform, processing, local pipelines, ModelTrainer",
    3: "ModelTrainer, ModelBuilder local serving, sagemaker-core local jobs and endpoints",
}
"""What the failure wrapper (agent.guest.patches.PATCHES_BY_MAJOR) reports, per SDK major: doctor names it."""
TURN_REPORTS_ON = ("smdiag kernels enable",)
"""The command that turns failure reports on in every notebook environment (then restart the kernel)."""


def check_name(check: str, item: str | None = None) -> str:
    """A check's name in text output: the disk's role for a disk row, else the check's own name."""
    if check == "disk" and item in DISK_NAMES:
        return DISK_NAMES[item]
    return CHECK_NAMES.get(check, check)


@dataclass(frozen=True)
class Problem:
    check: str
    problem: str
    fix: str
    remedy: str | None = None
    """The remedy `smdiag doctor --fix` applies for it (agent.fix's registry names it); None: none is automatic."""
    commands: tuple[str, ...] = ()
    """The fix as lines a user can copy, in order."""
    item: str | None = None
    """Which of the check's rows it is about (a disk's role) when the check has several; None: no one row."""


@dataclass(frozen=True)
class NextStep:
    """Not a problem (local mode runs), but worth doing: e.g. failure reports are off in an environment."""

    check: str
    step: str
    commands: tuple[str, ...] = ()
    then: str = ""
    """What to do after the commands (e.g. restart the kernel)."""
    items: tuple[str, ...] = ()
    """The rows (environments) it is about."""


def run_doctor(settings: Settings, engine: Engine) -> dict:
    """Gather the facts, diagnose them, and return the report (`healthy` is False when problems exist)."""
    facts = gather(settings, engine)
    problems = diagnose(facts, settings.high_pct)
    report = {"healthy": not problems, **facts, "problems": [asdict(p) for p in problems],
              "next_steps": [asdict(step) for step in next_steps(facts)]}  # fmt: skip
    log.info("doctor.finished", healthy=report["healthy"], problems=[p.check for p in problems])
    return report


def gather(settings: Settings, engine: Engine) -> dict:
    plat = platform.detect(settings)
    engine_facts = _engine(engine)
    daemon_config = _daemon_config(settings.daemon_config)
    docker_root = _docker_root(engine_facts, daemon_config, settings)
    notebook = host.notebook_facts(settings)
    return {
        "engine": engine_facts,
        "docker_root": docker_root,
        "daemon_config": daemon_config,
        "disks": [
            _disk("docker_root", Path(docker_root["path"])),
            _disk("tmp", Path(tempfile.gettempdir())),
            _disk("ebs", settings.ebs_mount),
        ],
        "compose": compose.probe_compose().to_dict(),
        "sdk_environments": _with_hooks_verified(sdk.environments(settings)),
        "aws": host.aws_facts(use_instance_metadata=notebook["is_notebook_instance"]),
        "notebook": notebook,
        "platform": plat.to_dict(),
        "studio": studio.gather(settings, plat, Path.home(), engine) if plat.kind == platform.STUDIO else None,
        "state_dir": _state_dir(settings.state_dir),
        "onstart": onstart.read(settings.state),
        "wrapper": _wrapper_errors(settings.state.wrapper_errors),
        "guard": guard_facts(settings.state),
    }


def diagnose(facts: dict, high_pct: float) -> list[Problem]:
    """Every problem the facts show, each with the fix a user can apply (pure)."""
    problems: list[Problem] = []
    eng = facts["engine"]
    if not eng["reachable"] and not facts.get("studio"):  # on Studio, studio.problems says why and what to do
        remedy = _engine_remedy(eng["error"])
        commands = ("sudo smdiag doctor --fix --only engine",) if remedy else ()
        problems.append(Problem("engine", eng["error"], eng["fix"], remedy, commands))

    sdks = [env for env in facts["sdk_environments"] if env["version"]]
    majors = {env["major"] for env in sdks}
    if not majors & set(sdk.KNOWN_MAJORS):
        unknown = ", ".join(f"{env['version']} in {env['environment']}" for env in sdks)
        found = f"only SageMaker SDKs of a major smdiag does not know ({unknown})" if sdks else None
        problems.append(
            Problem(
                "sagemaker_sdk",
                f"{found or 'no notebook environment has the SageMaker SDK'}: local mode cannot run anywhere",
                "install SDK v2 (the book's) or v3 into the notebook environment you run local mode from, with one "
                "of these; into smdiag's own: pip install 'smdiag[sagemaker]'",
                commands=("pip install 'sagemaker>=2.250,<3'", "pip install 'sagemaker>=3.27,<4'"),
            )
        )

    comp = facts["compose"]
    # SDK v3 takes any `docker compose` plugin (v2 and later); SDK v2 only one whose version says "v2".
    v3_alone = majors & set(sdk.KNOWN_MAJORS) == {3}
    if comp["docker_cli"] is None:
        problems.append(
            Problem(
                "compose",
                "the docker CLI is not on PATH: SageMaker local mode fails with FileNotFoundError",
                "install the Docker CLI: the package docker.io on Debian, docker on Amazon Linux",
            )
        )
    elif comp["command"] is None and not (v3_alone and comp["plugin_version"]):
        seen = comp["plugin_version"]
        detail = f" (`docker compose version` says {seen!r}, and SDK v2 only accepts a 'v2' plugin)" if seen else ""
        problems.append(
            Problem(
                "compose",
                f"SageMaker SDK v2 local mode will fail with 'Docker Compose is not installed'{detail}",
                "`smdiag doctor --fix` adds a docker-compose that runs the plugin"
                if seen
                else "install docker-compose on PATH, or the Docker Compose v2 plugin",
                "compose_shim" if seen else None,
                ("sudo smdiag doctor --fix --only compose",) if seen else (),
            )
        )

    config = facts["daemon_config"]
    if config["exists"] and config["error"]:
        problems.append(
            Problem(
                "daemon_config",
                f"{config['path']} is invalid ({config['error']}): dockerd will refuse to start",
                f"correct or restore {config['path']}",
            )
        )

    root = facts["docker_root"]
    ebs = next(d for d in facts["disks"] if d["role"] == "ebs")
    if root["on_root_volume"] and ebs["exists"] and not root["on_ebs_volume"]:
        problems.append(
            Problem(
                "docker_root",
                f"Docker's data-root {root['path']} is on the small root volume, which local-mode images fill",
                f"move it onto the EBS volume {ebs['path']} with smdiag bootstrap, which restarts Docker; "
                "see what it would do first with --dry-run",
                "bootstrap",
                ("sudo smdiag bootstrap --dry-run", "sudo smdiag bootstrap"),
            )
        )

    for disk in facts["disks"]:
        if disk["exists"] and disk["percent"] >= high_pct:
            problems.append(
                Problem(
                    "disk",
                    f"{DISK_ROLES[disk['role']]} {disk['path']} is {disk['percent']:.0f}% full "
                    f"({disks.human_bytes(disk['free'])} free, threshold {high_pct:g}%)",
                    DISK_FIXES[disk["role"]],
                    commands=DISK_COMMANDS.get(disk["role"], ()),
                    item=disk["role"],
                )
            )

    if sdks and not facts["aws"]["region"] and not facts["notebook"]["is_notebook_instance"]:
        problems.append(
            Problem(
                "aws",
                "no AWS region is configured: the SageMaker SDK raises NoRegionError",
                "set AWS_DEFAULT_REGION where the SDK runs, e.g. to us-east-1, or once for all with aws configure",
                commands=("export AWS_DEFAULT_REGION=us-east-1",),
            )
        )

    state = facts["state_dir"]
    if not state["writable"]:
        problems.append(
            Problem(
                "state_dir",
                f"smdiag's state directory {state['path']} is not writable ({state['error']})",
                "point SMDIAG_STATE_DIR, or --state-dir, at a writable directory",
            )
        )
    problems += _guard_problems(facts.get("guard"), high_pct)
    problems += [Problem(*check) for check in studio.problems(facts.get("studio"), high_pct)]
    problems += [Problem("onstart", problem, fix) for problem, fix in onstart.problems(facts.get("onstart"))]
    wrapper = facts.get("wrapper") or {"count": 0}
    if wrapper["count"]:
        last = wrapper["last"]
        problems.append(
            Problem(
                "wrapper",
                f"the failure wrapper in users' kernels hit {wrapper['count']} error(s) of its own (last: "
                f"{last.get('where')}: {last.get('error')} at {last.get('time')}); the SDK's calls went on "
                "as without it, but a failure may have no report",
                f"read {wrapper['path']} and report it to smdiag's maintainers; delete the file to reset the count",
            )
        )
    return problems


def next_steps(facts: dict) -> list[NextStep]:
    """What is worth doing though local mode runs: failure reports where an environment with the SDK has
    them off, or has the hook without its interpreter loading it (pure)."""
    steps = []
    reported = [env for env in facts["sdk_environments"] if env["major"] in WRAPPED_CALLS and not env["own"]]
    off = [env["environment"] for env in reported if not env["hook"]]
    if off:
        where = off[0] if len(off) == 1 else f"{len(off)} environments ({', '.join(off)})"
        steps.append(
            NextStep(
                "failure_reports",
                f"off in {where}: a local-mode call that fails there gets no report; turn them on with",
                TURN_REPORTS_ON,
                "then restart the kernel",
                tuple(off),
            )
        )
    for env in reported:
        if env["hook"] and env.get("hook_loaded") is False:
            steps.append(
                NextStep(
                    "failure_reports",
                    f"not loaded in {env['environment']}: {env['hook_error']}; a local-mode call "
                    "that fails there gets no report: run local mode from an environment where they are on",
                    items=(env["environment"],),
                )
            )
    return steps


def _guard_problems(guard: dict | None, high_pct: float) -> list[Problem]:
    """A guard killed (its pid file outlived it), or one without the engine's events for longer than its retries
    take though its engine answered its last attempt (one waiting for a stopped engine is not stuck). No guard at
    all is no problem: not every host keeps one."""
    if guard is None:
        return []
    if guard["ended_pid"] is not None:
        return [
            Problem(
                "guard",
                f"the disk guard (pid {guard['ended_pid']}) ended without being stopped (killed?): nothing keeps "
                f"Docker's disk under {high_pct:g}% now",
                f"start it again (what it printed last is in {guard['output']}, or in the journal for its "
                "systemd unit), or stop it for good with `smdiag diskguard stop`",
                commands=("sudo smdiag diskguard start",),
            )
        ]
    lost_for_s = guard["events_lost_for_s"]
    if guard["engine_answered"] and lost_for_s is not None and lost_for_s > EVENTS_GRACE_S:
        return [
            Problem(
                "guard",
                f"the disk guard (pid {guard['pid']}) has not followed the engine's events for {lost_for_s:.0f} s "
                f"({guard['events_error']}), though its engine answered its last attempt: it frees space on its "
                "periodic checks only, not when a pull starts",
                f"restart it; what it printed is in {guard['output']}",
                commands=("sudo smdiag diskguard stop", "sudo smdiag diskguard start"),
            )
        ]
    return []


def _engine_remedy(error: str) -> str | None:
    """Starting Docker repairs an engine that is not running, not a socket that refused us (permission denied:
    the fix is the docker group)."""
    return None if "permission denied" in error.lower() else "start_engine"


def _with_hooks_verified(environments: list[dict]) -> list[dict]:
    """Each environment with `hook_loaded` (and `hook_error`): whether its interpreter, started as a kernel
    starts, was seen to load the hook. Checked only where the hook file is there and the SDK is, each
    interpreter started at the same time: many environments cost about what the slowest one does."""
    to_check = [Path(env["environment"]) for env in environments if env["hook"] and env["version"]]
    seen: dict[str, tuple[bool, str | None]] = {}
    if to_check:
        with ThreadPoolExecutor(max_workers=min(len(to_check), HOOK_CHECKS_AT_ONCE)) as pool:
            seen = dict(zip(map(str, to_check), pool.map(kernels.verify_hook, to_check), strict=True))
    verified = []
    for env in environments:
        loaded, error = seen.get(env["environment"], (None, None))
        verified.append({**env, "hook_loaded": loaded, "hook_error": error})
    return verified


def _engine(engine: Engine) -> dict:
    try:
        facts = engine.describe()
    except SmdiagError as exc:
        if exc.exit_code == 2:
            raise
        return {"reachable": False, "host": engine.host, "error": exc.problem, "fix": exc.fix}
    return {"reachable": True, **facts.to_dict(), "error": None, "fix": None}


def _daemon_config(path: Path) -> dict:
    facts = {"path": str(path), "exists": path.exists(), "error": None, "data_root": None}
    if not facts["exists"]:
        return facts
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("the top level is not a JSON object")
        data_root = config.get("data-root")
        if data_root is not None and not isinstance(data_root, str):
            raise ValueError(f'"data-root" is {data_root!r}, not a path')
        facts["data_root"] = data_root
    except (OSError, ValueError) as exc:
        facts["error"] = str(exc)
    return facts


def _docker_root(engine_facts: dict, daemon_config: dict, settings: Settings) -> dict:
    """Where the engine keeps its data: the engine's word, else the configured or default path."""
    if engine_facts["reachable"]:
        path, source = engine_facts["root_dir"], "engine"
    elif daemon_config["data_root"]:
        path, source = daemon_config["data_root"], "daemon.json"
    else:
        path, source = str(DEFAULT_DOCKER_ROOT), "default"
    return {
        "path": path,
        "source": source,
        "on_root_volume": _same_fs(path, settings.root_volume),
        "on_ebs_volume": _same_fs(path, settings.ebs_mount),
    }


def _same_fs(a: str | Path, b: str | Path) -> bool | None:
    try:
        return disks.same_filesystem(a, b)
    except OSError:
        return None


def _disk(role: str, path: Path) -> dict:
    usage = disks.fs_usage(path)
    if usage is None:
        return {"role": role, "path": str(path), "exists": False}
    return {"role": role, "exists": True, **usage.to_dict()}


def _wrapper_errors(path: Path) -> dict:
    """The errors the guest (agent.guest) logged instead of raising them into a user's call (one JSON line each)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    last: dict = {}
    with contextlib.suppress(IndexError, ValueError):
        last = json.loads(lines[-1])
    return {"path": str(path), "count": len(lines), "last": last if isinstance(last, dict) else {}}


def _state_dir(path: Path) -> dict:
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return {"path": str(path), "writable": False, "error": exc.strerror or str(exc)}
    return {"path": str(path), "writable": True, "error": None}
