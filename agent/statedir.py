"""Every path under smdiag's state dir, named once.

The state dir lives on the EBS volume (it survives restarts) and is shared by the agent, the kernels'
failure wrapper (as the notebook user) and `lifecycle-config/on-start.sh` (which asks `smdiag paths
--shell` rather than repeating this layout). Stdlib only: the wrapper imports it inside users' kernels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK_EBS_MOUNT = Path("/home/ec2-user/SageMaker")


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def default(cls, ebs_mount: Path, env: Mapping[str, str]) -> StateDir:
        """On a notebook the state lives on the EBS volume; elsewhere in the user's XDG state directory."""
        if ebs_mount.is_dir():
            return cls(ebs_mount / ".smdiag")
        xdg = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
        return cls(Path(xdg) / "smdiag")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateDir:
        """SMDIAG_STATE_DIR, else the default for SMDIAG_EBS_MOUNT: what `Settings.load` resolves when no
        flag is given, without the rest of the settings (the wrapper inside users' kernels needs only this)."""
        if env.get("SMDIAG_STATE_DIR"):
            return cls(Path(env["SMDIAG_STATE_DIR"]))
        return cls.default(Path(env.get("SMDIAG_EBS_MOUNT") or NOTEBOOK_EBS_MOUNT), env)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "agent.log"

    @property
    def wrapper_errors(self) -> Path:
        """One JSON line per error inside the kernels' wrapper (never raised into the user's call)."""
        return self.logs / "wrapper-errors.jsonl"

    @property
    def failures(self) -> Path:
        """One directory per failed local-mode call: report.json and the containers' logs."""
        return self.root / "failures"

    @property
    def kernel_hook(self) -> Path:
        return self.root / "kernel-hook"

    @property
    def fix(self) -> Path:
        return self.root / "fix"

    @property
    def kernels(self) -> Path:
        """`kernels enable`'s journal and lock: beside kernel-hook/, which kernels put on their sys.path."""
        return self.root / "kernels"

    @property
    def onstart(self) -> Path:
        """What the lifecycle script leaves for `smdiag doctor`. The script writes here from before the
        agent is installed, so it names this directory's files itself (on-start.sh)."""
        return self.root / "onstart"

    @property
    def onstart_status(self) -> Path:
        """One `step<TAB>state<TAB>seconds<TAB>detail` line per step of the last on-start run."""
        return self.onstart / "status.tsv"

    @property
    def onstart_log(self) -> Path:
        return self.onstart / "on-start.log"

    def onstart_bootstrap(self, suffix: str) -> Path:
        """The background data-root move's `pid`, then its exit code (`rc`) and output (`out`)."""
        return self.onstart / f"bootstrap.{suffix}"

    @property
    def bootstrap(self) -> Path:
        return self.root / "bootstrap"

    @property
    def diskguard(self) -> Path:
        return self.root / "diskguard"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def venvs(self) -> Path:
        """The agent's own environment (`venv`) and the ones it builds (`venvs/`), kept across restarts."""
        return self.root / "venvs"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def shell_assignments(self) -> dict[str, str]:
        """What on-start.sh needs, as SMDIAG_* names (for `smdiag paths --shell`)."""
        return {
            "SMDIAG_STATE_DIR": str(self.root),
            "SMDIAG_LOGS_DIR": str(self.logs),
            "SMDIAG_LOG_FILE": str(self.log_file),
            "SMDIAG_FAILURES_DIR": str(self.failures),
            "SMDIAG_ONSTART_DIR": str(self.onstart),
            "SMDIAG_DOWNLOADS_DIR": str(self.downloads),
            "SMDIAG_VENVS_DIR": str(self.venvs),
        }

    def shell_script(self) -> str:
        """`shell_assignments` as lines a shell can eval, each value single-quoted (a path may hold spaces,
        quotes or `$`): `'` itself is closed, escaped and reopened."""
        lines = []
        for name, value in self.shell_assignments().items():
            escaped = value.replace("'", "'\\''")
            lines.append(f"{name}='{escaped}'")
        return "\n".join(lines)
