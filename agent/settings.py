"""Every default a notebook instance needs, in one place.

Resolution order: flags (passed as overrides) > `SMDIAG_*` environment variables > notebook defaults.
Settings are resolved once per process and passed down; library code never reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import BadInput
from agent.statedir import NOTEBOOK_EBS_MOUNT, StateDir

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_DOCKER_ROOT = Path("/var/lib/docker")
DEFAULT_CONDA_ENVS = "/home/ec2-user/anaconda3 /home/ec2-user/anaconda3/envs/*"


@dataclass(frozen=True)
class Settings:
    ebs_mount: Path
    """The large EBS volume that survives restarts (on a notebook instance, the only one that does)."""
    state_dir: Path
    """Where smdiag keeps logs, reports and state; on the EBS volume so it survives restarts."""
    root_volume: Path
    """A path on the small root volume that /var/lib/docker lives on by default."""
    docker_host: str
    daemon_config: Path
    """dockerd's daemon.json (Amazon Linux 2023 and any systemd host)."""
    sysconfig: Path
    """Amazon Linux 2's /etc/sysconfig/docker, whose OPTIONS line the docker unit reads."""
    systemd_dir: Path
    """Where the docker unit's drop-in (DOCKER_TMPDIR) goes; skipped when the directory does not exist."""
    systemd_run_dir: Path
    """Exists where systemd is the init system (and so runs Docker): only then is the drop-in written."""
    sagemaker_config: Path
    """The SageMaker SDK's config file of the notebook user, whose `local: container_root:` we set."""
    high_pct: float
    """Disk usage (percent) above which a filesystem counts as nearly full and pruning starts."""
    low_pct: float
    """Disk usage (percent) that pruning brings a filesystem back down to."""
    cache_dir: Path
    """Downloads and build contexts that are worth keeping between runs (the offline images')."""
    conda_envs: tuple[str, ...]
    """Glob patterns of the notebook's Python environments, whose kernels get the failure-report hook."""
    notebook_config: Path
    notebook_metadata: Path
    os_release: Path

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Resolve settings from the environment, then apply flag overrides (None means "not given")."""
        env = os.environ if env is None else env
        ebs_mount = Path(_pick(overrides, env, "ebs_mount", "SMDIAG_EBS_MOUNT", str(NOTEBOOK_EBS_MOUNT)))
        state_dir = _pick(overrides, env, "state_dir", "SMDIAG_STATE_DIR", None)
        settings = cls(
            ebs_mount=ebs_mount,
            state_dir=Path(state_dir) if state_dir else StateDir.default(ebs_mount, env).root,
            root_volume=Path(_pick(overrides, env, "root_volume", "SMDIAG_ROOT_VOLUME", "/")),
            docker_host=str(_pick(overrides, env, "docker_host", "DOCKER_HOST", DEFAULT_DOCKER_HOST)),
            daemon_config=Path(
                _pick(overrides, env, "daemon_config", "SMDIAG_DOCKER_CONFIG", "/etc/docker/daemon.json")
            ),
            sysconfig=Path(_pick(overrides, env, "sysconfig", "SMDIAG_SYSCONFIG", "/etc/sysconfig/docker")),
            systemd_dir=Path(_pick(overrides, env, "systemd_dir", "SMDIAG_SYSTEMD_DIR", "/etc/systemd/system")),
            systemd_run_dir=Path(
                _pick(overrides, env, "systemd_run_dir", "SMDIAG_SYSTEMD_RUN_DIR", "/run/systemd/system")
            ),
            sagemaker_config=Path(
                _pick(
                    overrides,
                    env,
                    "sagemaker_config",
                    "SMDIAG_SAGEMAKER_CONFIG",
                    "/home/ec2-user/.sagemaker/config.yaml",
                )
            ),
            high_pct=_percent(overrides, env, "high_pct", "SMDIAG_HIGH_PCT", 85),
            low_pct=_percent(overrides, env, "low_pct", "SMDIAG_LOW_PCT", 75),
            cache_dir=Path(_pick(overrides, env, "cache_dir", "SMDIAG_CACHE_DIR", default_cache_dir(env))),
            conda_envs=tuple(str(_pick(overrides, env, "conda_envs", "SMDIAG_CONDA_ENVS", DEFAULT_CONDA_ENVS)).split()),
            notebook_config=Path(
                _pick(
                    overrides,
                    env,
                    "notebook_config",
                    "SMDIAG_NOTEBOOK_CONFIG",
                    "/etc/opt/ml/sagemaker-notebook-instance-config.json",
                )
            ),
            notebook_metadata=Path(
                _pick(
                    overrides,
                    env,
                    "notebook_metadata",
                    "SMDIAG_NOTEBOOK_METADATA",
                    "/opt/ml/metadata/resource-metadata.json",
                )
            ),
            os_release=Path(_pick(overrides, env, "os_release", "SMDIAG_OS_RELEASE", "/etc/os-release")),
        )
        if settings.low_pct >= settings.high_pct:
            raise BadInput(
                f"the low watermark SMDIAG_LOW_PCT ({settings.low_pct:g}%) is not below the high one "
                f"SMDIAG_HIGH_PCT ({settings.high_pct:g}%)",
                "set SMDIAG_LOW_PCT smaller than SMDIAG_HIGH_PCT",
            )
        return settings

    def replace(self, **overrides: object) -> Settings:
        """A copy with the given (non-None) flag values applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self

    @property
    def state(self) -> StateDir:
        """The state dir's layout: every path under it is named there, not spelled out by callers."""
        return StateDir(self.state_dir)

    @property
    def log_file(self) -> Path:
        return self.state.log_file


def default_cache_dir(env: Mapping[str, str]) -> str:
    xdg = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return str(Path(xdg) / "smdiag")


def _pick(overrides: Mapping[str, object], env: Mapping[str, str], field: str, var: str, default):
    value = overrides.get(field)
    if value is not None:
        return value
    return env.get(var) or default


def _percent(overrides: Mapping[str, object], env: Mapping[str, str], field: str, var: str, default: float) -> float:
    """A watermark percent; a bad one names where it came from (the variable, or the setting)."""
    value = _pick(overrides, env, field, var, default)
    source = f"{var}={value!r}" if overrides.get(field) is None and env.get(var) else f"{field} {value!r}"
    fix = f"set {var} to a percent between 1 and 99, or unset it"
    try:
        pct = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{source} is not a number", fix) from None
    if not 1 <= pct <= 99:
        raise BadInput(f"{source} is outside 1..99", fix)
    return pct
