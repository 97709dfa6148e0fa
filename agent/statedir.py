"""Every path under smdiag's state dir, named once.

The state dir lives on the EBS volume (it survives restarts) and is shared by the agent, the kernels'
failure wrapper (as the notebook user) and `lifecycle-config/on-start.sh` (which asks `smdiag paths
--shell` rather than repeating this layout). Stdlib only: the wrapper imports it inside users' kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateDir:
    root: Path

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
        return self.root / "onstart"

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
            "SMDIAG_LOG_FILE": str(self.log_file),
            "SMDIAG_FAILURES_DIR": str(self.failures),
            "SMDIAG_ONSTART_DIR": str(self.onstart),
            "SMDIAG_DOWNLOADS_DIR": str(self.downloads),
            "SMDIAG_VENVS_DIR": str(self.venvs),
        }
