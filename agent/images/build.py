"""Building the offline framework images: a shared base (Debian's python3, by debootstrap, then `docker
import`) and one layer per framework (its packages from agent.frameworks, installed by the host's pip);
every image carries a fingerprint of its inputs, so a build whose inputs have not changed is a no-op, and
the downloaded pieces are cached in the build cache directory.

Planning (fingerprints, Dockerfiles, what to build or tag) is pure; debootstrap, pip and the engine
are the edges.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import BadInput, Failed
from agent.frameworks import PACKAGES, image_uris
from agent.imageref import split_image_ref
from agent.log import get_logger

if TYPE_CHECKING:
    from agent.engine import Engine

log = get_logger("images")

CONTAINER_DIR = Path(__file__).with_name("container")
"""The contract's runtime, copied into every image."""
LABEL = "smdiag.contract.fingerprint"
BASE_REPOSITORY = "smdiag/contract-base"
SUITE = "bookworm"
"""Debian 12: python3 3.11 and glibc 2.36, for which the host's pip picks the wheels (whatever the host runs)."""
IMAGE_PYTHON, IMAGE_GLIBC_MINOR = "3.11", 36
BASE_PACKAGES = ("python3", "ca-certificates")
DEBOOTSTRAP_TIMEOUT_S = 900
PIP_TIMEOUT_S = 1800
ENGINE_TIMEOUT_S = 600
"""How long one engine call may take: importing the base filesystem and building a layer are single calls."""


@dataclass(frozen=True)
class Wanted:
    framework: str
    fingerprint: str
    uris: tuple[str, ...]

    @property
    def local_tag(self) -> str:
        return f"smdiag/contract-{self.framework}:{self.fingerprint}"


def wheel_selection() -> list[str]:
    """pip's options that choose wheels for the image's Python and glibc rather than the host's. Pure."""
    machine = platform.machine()
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(IMAGE_GLIBC_MINOR, 16, -1)]
    tags += [f"manylinux2014_{machine}", f"linux_{machine}"]
    abi = "cp" + IMAGE_PYTHON.replace(".", "")
    options = ["--python-version", IMAGE_PYTHON, "--implementation", "cp", "--abi", abi, "--only-binary=:all:"]
    return options + [arg for tag in tags for arg in ("--platform", tag)]


def base_fingerprint() -> str:
    return _digest(SUITE, *BASE_PACKAGES, "python3 -> /usr/bin/python3")


def dockerfile(framework: str, base_tag: str, fingerprint: str) -> str:
    """The framework layer over the base: its packages, the contract's module and entry points. Pure."""
    return "\n".join(
        [
            f"FROM {base_tag}",
            "COPY site /opt/smdiag/site",
            "COPY smdiag_container.py /opt/smdiag/lib/smdiag_container.py",
            "COPY train serve pip3 /usr/local/bin/",
            f"ENV SMDIAG_FRAMEWORK={framework} PYTHONPATH=/opt/smdiag/site:/opt/smdiag/lib PYTHONUNBUFFERED=1 "
            "PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=2",
            f'LABEL {LABEL}="{fingerprint}" smdiag.contract.framework="{framework}"',
            'CMD ["train"]',
            "",
        ]
    )


def image_fingerprint(framework: str) -> str:
    container = (CONTAINER_DIR / "smdiag_container.py").read_bytes()
    inputs = (*PACKAGES[framework], *wheel_selection())
    return _digest(base_fingerprint(), framework, *inputs, container, dockerfile(framework, "", ""))


def plan(wanted: list[Wanted], present: dict[str, str | None], replace: bool) -> dict[str, str]:
    """framework -> `current` (every URI already names the wanted image), `tag` (the image exists under
    its local tag: add the URIs), or `build`. `present` maps each existing tag to its fingerprint label
    (None: not built by smdiag). A URI held by an image not built by smdiag is refused unless `replace`:
    it may be the real one, pulled from ECR. Pure."""
    foreign = [uri for w in wanted for uri in w.uris if uri in present and present[uri] is None]
    if foreign and not replace:
        raise BadInput(
            f"{', '.join(foreign)} already names an image smdiag did not build (pulled from ECR?)",
            "keep it (local mode will use it), or pass --replace to tag smdiag's image instead",
        )
    actions = {}
    for w in wanted:
        if all(present.get(uri) == w.fingerprint for uri in w.uris):
            actions[w.framework] = "current"
        elif present.get(w.local_tag) == w.fingerprint:
            actions[w.framework] = "tag"
        else:
            actions[w.framework] = "build"
    return actions


def build(
    engine: Engine,
    frameworks: list[str],
    region: str,
    cache_dir: Path,
    replace: bool = False,
    step: Callable[[str], None] | None = None,
) -> dict:
    """Build (or find current) the images of `frameworks`, tagged with the URIs of `region`."""
    import docker.errors

    step = step or (lambda _text: None)
    try:
        wanted = [Wanted(f, image_fingerprint(f), tuple(image_uris(f, region))) for f in frameworks]
    except ImportError:
        raise BadInput(
            "images build needs the SageMaker SDK v2 in smdiag's environment: it says which URIs its estimators "
            "resolve",
            "pip install 'smdiag[sagemaker-v2]'",
        ) from None
    step(f"checking the engine for {', '.join(frameworks)} images")
    client = engine.client
    present = {}
    for tag in {t for w in wanted for t in (w.local_tag, *w.uris)}:
        with contextlib.suppress(docker.errors.ImageNotFound):
            present[tag] = (client.images.get(tag).labels or {}).get(LABEL)
    actions = plan(wanted, present, replace)
    results = []
    base_tag = f"{BASE_REPOSITORY}:{base_fingerprint()}"
    for w in wanted:
        started = time.perf_counter()
        action = actions[w.framework]
        if action == "build":
            try:
                _ensure_base(client, base_tag, cache_dir, step)
                _build_framework(client, w, base_tag, cache_dir, step)
            except (docker.errors.BuildError, docker.errors.APIError) as exc:
                reason = getattr(exc, "explanation", None) or getattr(exc, "msg", None) or str(exc)
                raise Failed(
                    f"building the {w.framework} image failed: {str(reason).strip()}",
                    "make room for it (smdiag diskguard once) or see the engine's log",
                ) from None
        image = client.images.get(w.uris[0] if action == "current" else w.local_tag)
        replaced = [_tag(client, image, uri) for uri in w.uris]
        for old in filter(None, replaced):
            _remove_if_untagged(client, old)
        results.append(
            {
                "framework": w.framework,
                "action": {"build": "built", "tag": "tagged", "current": "current"}[action],
                "uris": list(w.uris),
                "image": image.id,
                "size": image.attrs["Size"],
                "seconds": round(time.perf_counter() - started, 1),
                "fingerprint": w.fingerprint,
            }
        )
        log.info("images.ready", **results[-1])
    return {"region": region, "images": results}


def _ensure_base(client, base_tag: str, cache_dir: Path, step) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(base_tag)
        return
    rootfs_tar = cache_dir / f"base-{base_fingerprint()}.tar"
    if not rootfs_tar.exists():
        _debootstrap(rootfs_tar, step)
    step(f"importing the base filesystem as {base_tag}")
    repository, tag = split_image_ref(base_tag)
    client.api.import_image_from_file(
        str(rootfs_tar), repository=repository, tag=tag, changes=[f'LABEL {LABEL}="{base_fingerprint()}"']
    )


def _debootstrap(rootfs_tar: Path, step) -> None:
    """Debian's minimal base with python3, from Debian's mirror (no registry), as a tar for `docker import`."""
    if shutil.which("debootstrap") is None:
        raise Failed("debootstrap is not installed: the base image is made with it", "apt-get install debootstrap")
    rootfs_tar.parent.mkdir(parents=True, exist_ok=True)
    work = rootfs_tar.with_suffix(".rootfs")
    shutil.rmtree(work, ignore_errors=True)
    step(f"debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} (about a minute)")
    mirror = debian_mirror()
    done = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(work), mirror],
        capture_output=True,
        text=True,
        timeout=DEBOOTSTRAP_TIMEOUT_S,
    )
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [f"exit {done.returncode}"]
        raise Failed(f"debootstrap from {mirror} failed: {last[0]}", "check that the Debian mirror is reachable")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(work / junk, ignore_errors=True)
    partial = rootfs_tar.with_suffix(".tar.part")
    subprocess.run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(partial), "."], check=True)
    partial.rename(rootfs_tar)
    shutil.rmtree(work, ignore_errors=True)


def debian_mirror() -> str:
    """SMDIAG_DEBIAN_MIRROR, else the host's own Debian mirror (deb822 sources or sources.list), else
    Debian's default."""
    if os.environ.get("SMDIAG_DEBIAN_MIRROR"):
        return os.environ["SMDIAG_DEBIAN_MIRROR"]
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in candidates:
        with contextlib.suppress(OSError):
            text = path.read_text()
            found = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
                r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)\s", text, re.M
            )
            if found:
                return found.group(1)
    return "http://deb.debian.org/debian"


def _build_framework(client, wanted: Wanted, base_tag: str, cache_dir: Path, step) -> None:
    """The framework's packages go into a cached build context by the host's pip, choosing the image's
    wheels (a container here cannot reach the package index), then one `docker build` layer over the base."""
    ctx = cache_dir / f"context-{wanted.framework}-{_digest(*PACKAGES[wanted.framework], *wheel_selection())}"
    site = ctx / "site"
    if not (ctx / "site.done").exists():
        shutil.rmtree(site, ignore_errors=True)
        step(f"pip install {' '.join(PACKAGES[wanted.framework])} into the image (minutes, the first time)")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
             "--target", str(site), *wheel_selection(), *PACKAGES[wanted.framework]],
            capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise Failed(f"installing {wanted.framework}'s packages failed: {last}", "check the package index")
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's interpreter
        (ctx / "site.done").touch()
    shutil.copy2(CONTAINER_DIR / "smdiag_container.py", ctx / "smdiag_container.py")
    for command in ("train", "serve", "pip3"):
        (ctx / command).write_text(f'#!/bin/sh\nexec python3 -m smdiag_container {command} "$@"\n')
        (ctx / command).chmod(0o755)
    (ctx / "Dockerfile").write_text(dockerfile(wanted.framework, base_tag, wanted.fingerprint))
    step(f"docker build {wanted.local_tag}")
    client.images.build(path=str(ctx), tag=wanted.local_tag, rm=True, forcerm=True)
    for stale in cache_dir.glob(f"context-{wanted.framework}-*"):  # contexts of packages no longer wanted
        if stale != ctx:
            shutil.rmtree(stale, ignore_errors=True)


def _tag(client, image, uri: str) -> str | None:
    """Point `uri` at `image`; returns the id of the image it named before, if another."""
    import docker.errors

    previous = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        previous = client.images.get(uri).id
    if previous == image.id:
        return None
    repository, tag = split_image_ref(uri)
    image.tag(repository, tag)
    return previous


def _remove_if_untagged(client, image_id: str) -> None:
    """An older build that no URI names any more would only take room."""
    import docker.errors

    with contextlib.suppress(docker.errors.APIError):
        image = client.images.get(image_id)
        if (image.labels or {}).get(LABEL) and not [t for t in image.tags if not t.startswith("smdiag/contract-")]:
            for tag in image.tags:
                client.images.remove(tag, noprune=False)


def format_result(result: dict) -> str:
    from agent.disks import human_bytes

    lines = []
    for image in result["images"]:
        size, uris = human_bytes(image["size"]), ", ".join(image["uris"])
        lines.append(f"{image['framework']:<10} {image['action']:<8} {size:>9}  {image['seconds']:>6.1f}s  {uris}")
    return "\n".join(lines)


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]
