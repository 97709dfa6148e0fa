"""One parser of image references (docker-py's), so a registry port is never taken for a tag."""

from __future__ import annotations


def split_image_ref(ref: str) -> tuple[str, str | None]:
    """`host:5000/repo:tag` -> (`host:5000/repo`, `tag`); a digest comes back as the tag (`sha256:...`);
    no tag -> (ref, None)."""
    from docker.utils import parse_repository_tag  # lazy: a managed call's report never loads docker-py

    repository, tag = parse_repository_tag(ref)
    return repository, tag or None
