"""One parser of image references (docker-py's), so a registry port is never taken for a tag."""

from __future__ import annotations

from docker.utils import parse_repository_tag


def split_image_ref(ref: str) -> tuple[str, str | None]:
    """`host:5000/repo:tag` -> (`host:5000/repo`, `tag`); a digest comes back as the tag (`sha256:...`);
    no tag -> (ref, None)."""
    repository, tag = parse_repository_tag(ref)
    return repository, tag or None


def with_default_tag(ref: str) -> str:
    """The reference as the engine names it when no tag is given."""
    repository, tag = split_image_ref(ref)
    if tag and tag.startswith("sha256:"):
        return f"{repository}@{tag}"
    return f"{repository}:{tag or 'latest'}"
