"""Removing one step of diskguard's plan from the engine, never forcing, and never from under a container.

We never force, so the engine refuses an image a registered container uses; a container still being
created (its image looked up and its layers taken, not yet registered) does not stop the engine, so before
each image removal we look for its writable layer in the layer store (and keep the image), and after it
whether the image's layers are still held (and put the image back from its config).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path

import docker.errors
import requests

from agent import container_logs
from agent.guard import image_store
from agent.guard.plan import Step
from agent.imageref import split_image_ref
from agent.log import get_logger
from agent.statedir import StateDir

log = get_logger("diskguard")
SETTLE_RETRY_S = 120
"""How long pruning keeps asking a busy engine whether a removed image must be put back: giving up early
would leave a container being created without its image."""


def remove(client, step: Step, state: StateDir, root_dir: str | None) -> str | None:
    """Remove one thing, never forcing: None when it went, else why it stays (the engine refused because a
    container started meanwhile, or the image had to be put back)."""
    try:
        if step.kind == "container":
            container = client.containers.get(step.id)
            _save_logs(container, state.root)
            container.remove()
        elif step.kind == "build_cache":
            client.api.prune_builds()
        else:
            with _patient(client):
                return _remove_image(client, step, root_dir)
    except docker.errors.NotFound:
        return "the engine refused: in use"
    except docker.errors.APIError as exc:
        log.info("diskguard.refused", id=step.id, names=list(step.names), error=str(exc.explanation or exc))
        return "the engine refused: in use"
    return None


@contextlib.contextmanager
def _patient(client):
    """The engine finishes a delete (or a load) it has begun whatever the client does: a client that gives
    up after its usual few seconds no longer knows whether the image went, and so cannot put it back. While
    an image is removed and settled, the client waits as long as settling may take."""
    usual = client.api.timeout
    client.api.timeout = max(usual, SETTLE_RETRY_S)
    try:
        yield
    finally:
        client.api.timeout = usual


def _remove_image(client, step: Step, root_dir: str | None) -> str | None:
    """Untag every name, the last untag deletes; if the engine refuses midway, put the names back.

    The engine checks only registered containers: one being created from the image (looked up, layers
    taken, not yet registered) neither shows in its check nor stops the delete, and would then run from an
    image that no longer exists. So, just before the deleting call, the layer store is asked whether a
    container's writable layer already sits on the image (then it stays, names put back); a create that
    takes the layers after that look still holds them after the delete, and the image is put back from its
    config (same id, same names). Where the data-root is not visible (Studio) neither look can be made: the
    engine's own refusal is all there is."""
    if client.api.containers(all=True, filters={"ancestor": step.id}):
        raise docker.errors.APIError(f"a container uses {step.id}")
    saved = image_store.SavedImage.read(root_dir, step.id)
    names = list(step.names) or [step.id]  # by id when nameless: that call deletes too
    untagged = []
    try:
        for position, name in enumerate(names, start=1):
            if position == len(names) and saved is not None and saved.under_a_container():
                _retag(client, step.id, untagged)
                log.info("diskguard.kept_for_a_create", id=step.id, names=list(step.names))
                return "a container is being created from it"
            client.images.remove(name)
            if step.names:
                untagged.append(name)
    except docker.errors.APIError:
        _retag(client, step.id, untagged)
        raise
    deadline = time.monotonic() + SETTLE_RETRY_S
    while True:
        try:
            return _settle_removal(client, step, saved, untagged)
        except requests.RequestException as exc:  # a busy engine's timeout: not a DockerException
            if time.monotonic() > deadline:
                log.error("diskguard.put_back_unknown", id=step.id, names=list(step.names), error=str(exc))
                raise
            log.warning("diskguard.engine_slow_after_removal", id=step.id, error=str(exc))
            time.sleep(1)


def _settle_removal(client, step: Step, saved: image_store.SavedImage | None, untagged: list[str]) -> str | None:
    """After the delete: names back if the engine kept the image, the image back if a container being
    created still holds its layers. Every step is safe to repeat, so a timeout retries the whole."""
    if image_store.image_present(client, step.id):
        # The last untag left it: a container registered between the engine's two checks, or a new name.
        _retag(client, step.id, untagged)
        return "the engine kept it after the untag (in use, or named anew meanwhile): names put back"
    if saved is not None and saved.layers_held():
        try:
            saved.load(client)
            _retag(client, step.id, step.names)
        except docker.errors.DockerException as exc:
            log.warning("diskguard.put_back_failed", id=step.id, names=list(step.names), error=str(exc))
            return None
        log.warning("diskguard.put_back", id=step.id, names=list(step.names))
        return "put back: its layers were still held after removal (by a container being created, a pull or an image)"
    return None


def _retag(client, image_id: str, names: Iterable[str]) -> None:
    """Give the names back, except one that meanwhile names another image (a newer pull keeps it)."""
    for name in names:
        if image_store.image_present(client, name):
            continue
        repository, tag = split_image_ref(name)
        with contextlib.suppress(docker.errors.APIError):
            client.api.tag(image_id, repository, tag)


def _save_logs(container, state_dir: Path) -> None:
    """A stopped container's logs outlive it: written under the state dir before it is removed."""
    name = f"{container.name}-{container.id[:12]}.log"
    container_logs.save(container, state_dir / "diskguard" / "container-logs" / name, timestamps=True)
