"""The config files bootstrap rewrites to point Docker (and the SDK's local mode) at the EBS volume.

daemon.json gets `data-root` (every other key kept), /etc/sysconfig/docker loses the `-g`/`--data-root`
flags that would override it, a systemd drop-in moves Docker's temporary files onto the volume, and the
SageMaker SDK's config gets local mode's `container_root`. Each new text is a pure function of the old one;
`edits_for` says which files need one, `apply_edits` writes them, each backed up and its restore journaled
before the write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from agent import fileops
from agent.errors import BadInput
from agent.journal import Journal
from agent.log import get_logger
from agent.settings import Settings

log = get_logger("bootstrap")

ROOT_FLAGS = ("-g", "--graph", "--data-root")
DROPIN_NAME = "docker.service.d/smdiag-tmpdir.conf"
LOCAL_MODE_DIR = ".sagemaker-local"
"""Under the EBS mount: the SDK's local-mode `container_root` (model artifacts, staged inputs)."""


# ---------------------------------------------------------------------------------------------- pure edits


def merged_daemon_config(text: str | None, data_root: str, source: Path) -> str:
    """daemon.json with `data-root` set and every other key kept; BadInput if it is not a JSON object."""
    config = parse_daemon_config(text, source)
    config["data-root"] = data_root
    return json.dumps(config, indent=2) + "\n"


def parse_daemon_config(text: str | None, source: Path) -> dict:
    if text is None or not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{source} is not valid JSON: {exc}", f"fix or remove {source}, then run again") from None
    if not isinstance(config, dict):
        raise BadInput(f"{source} is not a JSON object", f"fix {source}: dockerd needs {{...}} at its top")
    return config


def sysconfig_without_root_flags(text: str) -> str:
    """The Amazon Linux OPTIONS line without -g/--graph/--data-root (dockerd refuses a flag that is also a
    daemon.json key, and Docker 23 removed -g). Other lines are kept byte for byte."""
    lines = []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("OPTIONS="):
            words = shlex.split(" ".join(shlex.split(stripped[len("OPTIONS=") :])))
            kept = _without_root_flags(words)
            if kept != words:
                ending = "\n" if line.endswith("\n") else ""
                line = f'OPTIONS="{" ".join(kept)}"{ending}'
        lines.append(line)
    return "".join(lines)


def _without_root_flags(words: list[str]) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ROOT_FLAGS:
            skip = True
        elif not any(word.startswith(flag + "=") for flag in ROOT_FLAGS):
            kept.append(word)
    return kept


def tmpdir_dropin(tmpdir: str) -> str:
    return (
        "# Written by smdiag bootstrap: Docker's temporary files (local mode stages inputs there) go to the\n"
        "# EBS volume, not the small root volume.\n"
        f"[Service]\nEnvironment=DOCKER_TMPDIR={tmpdir}\n"
    )


def local_mode_config(text: str | None, container_root: str) -> str | None:
    """The SageMaker SDK config with `local: container_root:` set, other keys kept; None when it is already
    set so. ValueError when the file is not a YAML mapping: it is the user's to fix, and we leave it alone."""
    try:
        config = (yaml.safe_load(text) if text else None) or {}
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    if not isinstance(config, dict) or not isinstance(config.setdefault("local", {}) or {}, dict):
        raise ValueError("its top level or its `local` key is not a mapping")
    config["local"] = config["local"] or {}
    if config["local"].get("container_root") == container_root:
        return None
    config["local"]["container_root"] = container_root
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


# ---------------------------------------------------------------------------------------------- edges


@dataclass(frozen=True)
class ConfigEdit:
    path: Path
    new_text: str


def apply_edits(edits: list[ConfigEdit], journal: Journal | None) -> list[Path | None]:
    """Back up and atomically rewrite each file; the journal registers each restore before the write."""
    saved = []
    for edit in edits:
        backup = fileops.backup(edit.path)
        if journal is not None:
            journal.will("restore", path=str(edit.path), backup=str(backup) if backup else None)
        fileops.atomic_write(edit.path, edit.new_text)
        saved.append(backup)
    return saved


def edits_for(settings: Settings, target: str) -> tuple[list[ConfigEdit], list[dict]]:
    """The config files to rewrite for `target`, and what was left alone because this host does not use it."""
    edits, skipped = [], []
    daemon_text = read_text(settings.daemon_config)
    if parse_daemon_config(daemon_text, settings.daemon_config).get("data-root") != target:
        edits.append(
            ConfigEdit(settings.daemon_config, merged_daemon_config(daemon_text, target, settings.daemon_config))
        )
    sysconfig_text = read_text(settings.sysconfig)
    if sysconfig_text is not None and sysconfig_without_root_flags(sysconfig_text) != sysconfig_text:
        edits.append(ConfigEdit(settings.sysconfig, sysconfig_without_root_flags(sysconfig_text)))
    dropin = settings.systemd_dir / DROPIN_NAME
    if not settings.systemd_run_dir.is_dir():
        skipped.append({"what": str(dropin), "why": "systemd does not run here, so it does not start Docker"})
    elif not settings.systemd_dir.is_dir():
        skipped.append({"what": str(dropin), "why": f"{settings.systemd_dir} does not exist"})
    elif read_text(dropin) != tmpdir_dropin(f"{target}/tmp"):
        edits.append(ConfigEdit(dropin, tmpdir_dropin(f"{target}/tmp")))
    return edits, skipped


def write_local_mode_config(settings: Settings) -> tuple[str | None, list[dict]]:
    """Point the SDK's local-mode container_root at the EBS volume, in the config of the notebook user, who
    owns it; (the file written, what was skipped and why). No user home, no file: we never make a home."""
    path = settings.sagemaker_config
    home = path.parent.parent
    if not settings.ebs_mount.is_dir():
        return None, [{"what": str(path), "why": f"there is no EBS volume at {settings.ebs_mount}"}]
    if not home.is_dir():
        return None, [{"what": str(path), "why": f"the notebook user's home {home} does not exist"}]
    container_root = settings.ebs_mount / LOCAL_MODE_DIR
    try:
        new_text = local_mode_config(read_text(path), str(container_root))
    except ValueError as exc:
        log.warning("bootstrap.sagemaker_config_left_alone", path=str(path), problem=str(exc))
        return None, [{"what": str(path), "why": f"it is not a SageMaker config smdiag can edit: {exc}"}]
    owner = home.stat()
    made_root = not container_root.exists()
    container_root.mkdir(exist_ok=True)
    if made_root:
        with contextlib.suppress(OSError):
            os.chown(container_root, owner.st_uid, owner.st_gid)
    if new_text is None:
        return None, []
    made_dir = not path.parent.exists()
    fileops.backup(path)
    fileops.atomic_write(path, new_text)
    for made in ([path.parent] if made_dir else []) + [path]:
        with contextlib.suppress(OSError):
            os.chown(made, owner.st_uid, owner.st_gid)
    return str(path), []


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
