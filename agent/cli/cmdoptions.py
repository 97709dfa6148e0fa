"""The app's own options and those several commands take, each declared once as an Annotated alias.

An option only one command takes is declared with that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.cli.inputs import new_path_callback


def NewPathOption(flag: str, metavar: str, help: str, absolute: bool = False, envvar: str | None = None):
    """The type of an option naming a path smdiag writes or makes: every such option is declared with this,
    so that each one follows the same rule for a missing directory (agent.inputs.new_path)."""
    return Annotated[
        Path | None,
        typer.Option(flag, envvar=envvar, metavar=metavar, callback=new_path_callback(absolute), help=help),
    ]


StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="Where logs, reports and state go (env SMDIAG_STATE_DIR; default <EBS mount>/.smdiag, "
        "else ~/.local/state/smdiag).",
    ),
]
GLOBAL_FLAGS = ("--verbose", "-v")
"""The app's own flags that are also accepted after the subcommand (`smdiag doctor -v`)."""
VerboseFlag = Annotated[bool, typer.Option(*GLOBAL_FLAGS, help="Log progress to stderr.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DockerHostOption = Annotated[
    str | None,
    typer.Option(
        "--docker-host", metavar="URL", help="Docker engine URL (env DOCKER_HOST; default unix:///var/run/docker.sock)."
    ),
]
FrameworksOption = Annotated[
    str,
    typer.Option("--framework", metavar="NAMES", help="all, tensorflow, pytorch or sklearn (comma-separated too)."),
]

# How a repair is made: `smdiag fix`, `doctor --fix`, and bootstrap's moving of the data-root.
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Repair without asking.")]
BinDirOption = NewPathOption(
    "--bin-dir",
    "DIR",
    "Where the docker-compose shim goes (env SMDIAG_BIN_DIR; default /usr/local/bin).",
    absolute=True,
    envvar="SMDIAG_BIN_DIR",
)
# The environment's names are on-start.sh's settings: the script passes them on by exporting them.
StopCmdOption = Annotated[
    str | None,
    typer.Option("--stop-cmd", metavar="COMMAND", envvar="SMDIAG_DOCKER_STOP_CMD", show_envvar=False,
                 help="Shell command that stops Docker (env SMDIAG_DOCKER_STOP_CMD)."),
]  # fmt: skip
StartCmdOption = Annotated[
    str | None,
    typer.Option("--start-cmd", metavar="COMMAND", envvar="SMDIAG_DOCKER_START_CMD", show_envvar=False,
                 help="Shell command that starts Docker (env SMDIAG_DOCKER_START_CMD)."),
]  # fmt: skip

# The guard's policy: `diskguard once`, `run` and `make-room`.
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

EnvsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--envs",
        metavar="GLOB",
        help="Glob of environment directories, repeatable (env SMDIAG_CONDA_ENVS, space-separated; "
        "default /home/ec2-user/anaconda3 and its envs/*).",
    ),
]
