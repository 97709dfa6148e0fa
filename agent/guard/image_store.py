"""The engine's image store read straight from its data-root (`image/<driver>/imagedb`, `layerdb`), for
what the API does not tell: when an image's config was stored, and whether its layers are still held.

Only meaningful when the engine is local (its data-root visible here); every reader returns None otherwise,
and when the data-root is None (a Studio space: the engine's data-root is the host's, never looked for).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from agent import fileops


def _configs(root_dir: str | None, image_id: str) -> Iterator[tuple[Path, Path]]:
    """(driver dir, config file) where each storage driver's image store would keep the image's config."""
    if not root_dir:
        return
    digest = image_id.split(":", 1)[-1]
    for driver_dir in Path(root_dir, "image").glob("*"):
        yield driver_dir, driver_dir / "imagedb" / "content" / "sha256" / digest


def config_stored_at(root_dir: str | None, image_id: str) -> float | None:
    """When the engine stored the image's config (the imagedb file's mtime): when it arrived here."""
    for _driver_dir, config in _configs(root_dir, image_id):
        with contextlib.suppress(OSError):
            return config.stat().st_mtime
    return None


def image_present(client, image: str) -> bool:
    try:
        client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return False
    return True


@dataclass(frozen=True)
class SavedImage:
    """An image's config exactly as the engine stored it, and where its layer chain lives: enough to put the
    image back (same id) while its layers are still in the layer store."""

    id: str
    config: bytes
    layer_dir: Path
    """The layer store's entry for the image's top layer; it exists as long as anything holds that layer."""

    @classmethod
    def read(cls, root_dir: str | None, image_id: str) -> SavedImage | None:
        """None when the data-root is not readable here (the engine is not local), or the image has no layers."""
        for driver_dir, path in _configs(root_dir, image_id):
            try:
                config = path.read_bytes()
                diff_ids = (json.loads(config).get("rootfs") or {}).get("diff_ids") or []
            except (OSError, ValueError):
                continue
            if not diff_ids:
                return None
            chain = diff_ids[0]
            for diff_id in diff_ids[1:]:  # the layer store's chain id: sha256 of "<parent chain> <diff id>"
                chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
            return cls(image_id, config, driver_dir / "layerdb" / "sha256" / chain.split(":", 1)[-1])
        return None

    def layers_held(self) -> bool:
        return self.layer_dir.exists()

    def under_a_container(self) -> bool:
        """Whether a container's writable layer sits on the image's top layer: the layer store records it
        (`layerdb/mounts/<container>/parent`) while the container is being created, before the engine
        registers the container and so before its delete check can see it."""
        chain = f"sha256:{self.layer_dir.name}"
        for parent in self.layer_dir.parent.parent.glob("mounts/*/parent"):
            with contextlib.suppress(OSError):
                if parent.read_text().strip() == chain:
                    return True
        return False

    def load(self, client) -> None:
        """`docker load` of the config alone (no names): the engine skips reading layers it already has."""
        digest = self.id.split(":", 1)[-1]
        layers = len(json.loads(self.config)["rootfs"]["diff_ids"])
        manifest = [{"Config": f"{digest}.json", "RepoTags": [], "Layers": [f"{i}/layer.tar" for i in range(layers)]}]
        archive = fileops.tar_in_memory(
            {f"{digest}.json": (self.config, 0o644), "manifest.json": (json.dumps(manifest).encode(), 0o644)}
        )
        for line in client.api.load_image(archive):
            if line.get("error"):
                raise docker.errors.APIError(line["error"])
        if not image_present(client, self.id):
            raise docker.errors.APIError(f"the engine did not load {self.id} back")
