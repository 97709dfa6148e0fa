"""`smdiag doctor`: is this host ready for SageMaker local mode, and if not, what to do about it.

`gather` touches the edges (engine, filesystems, compose CLI, AWS config); `diagnose` is pure and turns
the gathered facts into problems, each with its fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from agent import disks, platform
from agent.engine import Engine
from agent.errors import SmdiagError
from agent.host import compose, onstart, sdk, studio
from agent.host import facts as host
from agent.log import get_logger
from agent.settings import DEFAULT_DOCKER_ROOT, Settings

log = get_logger("doctor")

DISK_ROLES = {"docker_root": "Docker data-root", "tmp": "temp dir", "ebs": "EBS volume"}
DISK_FIXES = {
    "docker_root": "prune least recently used images: smdiag diskguard once (or keep it pruned: smdiag diskguard run)",
    "tmp": "delete leftovers in /tmp: local mode stages data and model artifacts there",
    "ebs": "increase the notebook's volume size (stop it, Edit, Volume size) or delete files from it",
}


@dataclass(frozen=True)
class Problem:
    check: str
    problem: str
    fix: str
    remedy: str | None = None
    """The remedy `smdiag doctor --fix` applies for it (agent.fix's registry names it); None: none is automatic."""


def run_doctor(settings: Settings, engine: Engine) -> dict:
    """Gather the facts, diagnose them, and return the report (`healthy` is False when problems exist)."""
    facts = gather(settings, engine)
    problems = diagnose(facts, settings.high_pct)
    report = {"healthy": not problems, **facts, "problems": [asdict(p) for p in problems]}
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
        "sdk_environments": sdk.environments(settings),
        "aws": host.aws_facts(use_instance_metadata=notebook["is_notebook_instance"]),
        "notebook": notebook,
        "platform": plat.to_dict(),
        "studio": studio.gather(settings, plat, Path.home(), engine) if plat.kind == platform.STUDIO else None,
        "state_dir": _state_dir(settings.state_dir),
        "onstart": onstart.read(settings.state),
        "wrapper": _wrapper_errors(settings.state.wrapper_errors),
    }


def diagnose(facts: dict, high_pct: float) -> list[Problem]:
    """Every problem the facts show, each with the fix a user can apply (pure)."""
    problems: list[Problem] = []
    eng = facts["engine"]
    if not eng["reachable"] and not facts.get("studio"):  # on Studio, studio.problems says why and what to do
        problems.append(Problem("engine", eng["error"], eng["fix"], _engine_remedy(eng["error"])))

    sdks = [env for env in facts["sdk_environments"] if env["version"]]
    majors = {env["major"] for env in sdks}
    if not majors & set(sdk.KNOWN_MAJORS):
        unknown = ", ".join(f"{env['version']} in {env['environment']}" for env in sdks)
        found = f"only SageMaker SDKs of a major smdiag does not know ({unknown})" if sdks else None
        problems.append(
            Problem(
                "sagemaker_sdk",
                f"{found or 'no notebook environment has the SageMaker SDK'}: local mode cannot run anywhere",
                "pip install 'sagemaker>=2.250,<3' (v2, the book's) or 'sagemaker>=3.27,<4' into a notebook "
                "environment, or pip install 'smdiag[sagemaker]' into smdiag's own",
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
                "install the Docker CLI (Debian: docker.io; Amazon Linux: docker)",
            )
        )
    elif comp["command"] is None and not (v3_alone and comp["plugin_version"]):
        seen = comp["plugin_version"]
        detail = f" (`docker compose version` says {seen!r}, and SDK v2 only accepts a 'v2' plugin)" if seen else ""
        problems.append(
            Problem(
                "compose",
                f"SageMaker SDK v2 local mode will fail with 'Docker Compose is not installed'{detail}",
                "run `smdiag doctor --fix` (it adds a `docker-compose` that runs the plugin)"
                if seen
                else "install docker-compose on PATH, or the Docker Compose v2 plugin",
                "compose_shim" if seen else None,
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
                f"move it onto the EBS volume {ebs['path']}: sudo smdiag bootstrap (see --dry-run first)",
                "bootstrap",
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
                )
            )

    if sdks and not facts["aws"]["region"] and not facts["notebook"]["is_notebook_instance"]:
        problems.append(
            Problem(
                "aws",
                "no AWS region is configured: the SageMaker SDK raises NoRegionError",
                "set AWS_DEFAULT_REGION (e.g. export AWS_DEFAULT_REGION=us-east-1) or run `aws configure`",
            )
        )

    state = facts["state_dir"]
    if not state["writable"]:
        problems.append(
            Problem(
                "state_dir",
                f"smdiag's state directory {state['path']} is not writable ({state['error']})",
                "set SMDIAG_STATE_DIR (or --state-dir) to a writable directory",
            )
        )
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


def _engine_remedy(error: str) -> str | None:
    """Starting Docker repairs an engine that is not running, not a socket that refused us (permission denied:
    the fix is the docker group)."""
    return None if "permission denied" in error.lower() else "start_engine"


def format_report(report: dict) -> str:
    """The report as lines a person reads: one per check, then each problem with its fix.

    Marks: "ok" checked and fine, "!!" a problem below, "--" not applicable here.
    """
    failing = {p["check"] for p in report["problems"]}
    rows = [*_engine_rows(report), *_disk_rows(report["disks"]), *_environment_rows(report)]
    rows += studio.rows(report.get("platform"), report.get("studio"))
    lines = [
        f"{check:<13} {'!!' if check in failing else 'ok' if applies else '--'}  {text}"
        for check, applies, text in rows
    ]
    problems = report["problems"]
    if problems:
        lines += ["", f"{len(problems)} problem{'s' if len(problems) > 1 else ''}:"]
        lines += [f"  {p['check']}: {p['problem']}\n    fix: {p['fix']}" for p in problems]
    else:
        where = ", ".join(env["environment"] for env in report["sdk_environments"] if env["version"])
        lines += ["", f"healthy: ready for SageMaker local mode (the SDK is in {where})"]
    return "\n".join(lines)


Row = tuple[str, bool, str]


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
        ("engine", eng["reachable"], engine_text),
        ("compose", bool(comp["command"]), compose_text),
        ("daemon_config", config["exists"], config_text),
        ("docker_root", eng["reachable"], f"{root['path']} (from {root['source']}) {volume}".rstrip()),
    ]


def _disk_rows(disk_facts: list[dict]) -> list[Row]:
    rows = []
    for disk in disk_facts:
        label = f"{DISK_ROLES[disk['role']]} {disk['path']}"
        if not disk["exists"]:
            rows.append(("disk", False, f"{label}: not present"))
            continue
        usage = (
            f"{disk['percent']:.0f}% used, {disks.human_bytes(disk['free'])} free of "
            f"{disks.human_bytes(disk['total'])} ({disk['device']} on {disk['mountpoint']})"
        )
        rows.append(("disk", True, f"{label}: {usage}"))
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
    return [
        *(("sagemaker_sdk", bool(env["version"]), _sdk_text(env)) for env in report["sdk_environments"]),
        (
            "aws",
            bool(aws["region"] or aws["credentials"]),
            f"region {aws['region'] or 'not set'}; credentials {credentials}",
        ),
        ("host", nb["is_notebook_instance"], host_text),
        ("state_dir", True, report["state_dir"]["path"]),
        ("onstart", report["onstart"] is not None, _onstart_text(report["onstart"])),
        ("wrapper", True, f"{report['wrapper']['count']} error(s) of its own logged in users' kernels"),
    ]


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
    elif env["hook"]:
        wrapper = f"failure reports on ({covered})"
    else:
        wrapper = f"failure reports off (smdiag kernels enable would cover {covered})"
    return f"{where}: sagemaker {env['version']} (v{env['major']}); {wrapper}"


WRAPPED_CALLS = {
    2: "fit, deploy, predict, transform, processing, local pipelines, ModelTrainer",
    3: "ModelTrainer, ModelBuilder local serving, sagemaker-core local jobs and endpoints",
}
"""What the failure wrapper (agent.autowrap's PATCHES_BY_MAJOR) reports, per SDK major: doctor names it."""


def _onstart_text(record: dict | None) -> str:
    if record is None:
        return "the lifecycle on-start script has not run here"
    steps = ", ".join(f"{s['step']} {s['state']}" for s in record["steps"])
    total = f" in {record['total_s']:g}s" if record["total_s"] is not None else " (unfinished)"
    background = f"; background migration {record['background']['state']}" if record["background"] else ""
    return f"last run {record['started']}{total}: {steps}{background}"


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
    """The errors agent.autowrap logged instead of raising them into a user's call (one JSON line each)."""
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
