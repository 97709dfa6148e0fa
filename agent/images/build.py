"""Building the offline framework images, in three cached stages:

1. a shared base: Debian's python3 by debootstrap (its tar kept in the build cache), then `docker import`;
2. per framework, a packages image: its packages from agent.frameworks, installed by the host's pip into
   the build cache, then one `docker build` layer over the base, tagged by a fingerprint of its inputs;
3. per framework, the contract image: smdiag's contract code and entry points, a small layer over the
   packages image, labelled with a fingerprint of everything that went in.

So an upgrade of smdiag that changes only the contract rebuilds only the small third layer (seconds), and
a build whose inputs have not changed at all is a no-op. Each stage is timed and said as it runs.

Planning (fingerprints, Dockerfiles, what to build or tag) is pure; debootstrap, pip and the engine
are the edges.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from agent import fileops
from agent.disks import human_bytes
from agent.errors import BadInput, Failed
from agent.frameworks import PACKAGES, VERSIONS, image_uris
from agent.guard.image_store import image_present
from agent.host import sdk
from agent.imageref import split_image_ref
from agent.log import get_logger

if TYPE_CHECKING:
    from agent.engine import Engine

log = get_logger("images")

CONTRACT = Path(__file__).with_name("container") / "smdiag_container.py"
"""The contract's runtime, copied into every image."""
LABEL = "smdiag.contract.fingerprint"
BASE_REPOSITORY = "smdiag/contract-base"
PACKAGES_REPOSITORY = "smdiag/contract-packages"
SUITE = "bookworm"
"""Debian 12: python3 3.11 and glibc 2.36, for which the host's pip picks the wheels (whatever the host runs)."""
IMAGE_PYTHON, IMAGE_GLIBC_MINOR = "3.11", 36
BASE_PACKAGES = ("python3", "ca-certificates")
DEBOOTSTRAP_TIMEOUT_S = 900
PIP_TIMEOUT_S = 1800
ENGINE_TIMEOUT_S = 600
"""How long one engine call may take: importing the base filesystem and building a layer are single calls."""
CONTEXT_CHUNK = 1 << 20
"""How much of the packages' tar stream goes to the engine at a time (urllib3 reads a file 16 KiB at a time)."""


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


def packages_dockerfile(base_tag: str) -> str:
    """The packages layer over the base. Its COPY is the one images built before the split began with,
    so an engine that holds such an image reuses that layer. Pure."""
    return f"FROM {base_tag}\nCOPY site /opt/smdiag/site\n"


def packages_fingerprint(framework: str) -> str:
    inputs = (*PACKAGES[framework], *wheel_selection())
    return _digest(base_fingerprint(), framework, *inputs, packages_dockerfile(""))


def packages_tag(framework: str) -> str:
    return f"{PACKAGES_REPOSITORY}-{framework}:{packages_fingerprint(framework)}"


def dockerfile(framework: str, parent: str, fingerprint: str) -> str:
    """The contract layer over the framework's packages image: the contract's module and entry points,
    the environment, the fingerprint label. Small, so a new contract costs seconds. Pure."""
    return "\n".join(
        [
            f"FROM {parent}",
            "COPY smdiag_container.py /opt/smdiag/lib/smdiag_container.py",
            "COPY train serve pip3 /usr/local/bin/",
            f"ENV SMDIAG_FRAMEWORK={framework} PYTHONPATH=/opt/smdiag/site:/opt/smdiag/lib PYTHONUNBUFFERED=1 "
            "PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=2",
            f'LABEL {LABEL}="{fingerprint}" smdiag.contract.framework="{framework}"',
            'CMD ["train"]',
            "",
        ]
    )


def image_fingerprint(framework: str, contract: Path = CONTRACT) -> str:
    return _digest(packages_fingerprint(framework), contract.read_bytes(), dockerfile(framework, "", ""))


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


class Stages:
    """The stages of one build, each said on the progress line as it starts and again as it ends (its
    seconds, or what earlier work it reused), and kept for the report: what a user watched is what the
    report lists."""

    def __init__(self, step: Callable[[str], None]) -> None:
        self.step = step
        self.done: list[dict] = []

    @contextlib.contextmanager
    def run(self, framework: str | None, stage: str, doing: str) -> Iterator[None]:
        self.step(f"{framework}: {doing}" if framework else doing)
        started = time.perf_counter()
        yield
        self._record(framework, stage, time.perf_counter() - started, None)

    def reused(self, framework: str | None, stage: str, what: str) -> None:
        self._record(framework, stage, 0.0, what)

    def _record(self, framework: str | None, stage: str, seconds: float, reused: str | None) -> None:
        self.done.append(
            {"framework": framework, "stage": stage, "seconds": round(seconds, 1), "reused": reused is not None,
             "note": reused}
        )  # fmt: skip
        said = f"reused ({reused})" if reused is not None else f"done in {seconds:.1f} s"
        self.step(f"{framework}: {stage} {said}" if framework else f"{stage} {said}")


def build(
    engine: Engine,
    frameworks: list[str],
    region: str,
    cache_dir: Path,
    replace: bool = False,
    step: Callable[[str], None] | None = None,
    contract: Path = CONTRACT,
) -> dict:
    """Build (or find current) the images of `frameworks`, tagged with the URIs of `region`, with the
    contract at `contract` (the one this smdiag ships, unless a caller stands in another version)."""
    started = time.perf_counter()
    stages = Stages(step or (lambda _text: None))
    learned: list[tuple[Path, tuple[str, ...]]] = []
    try:
        wanted = [
            Wanted(f, image_fingerprint(f, contract), _uris(f, region, cache_dir, stages, learned)) for f in frameworks
        ]
    except ImportError:
        raise BadInput(
            "images build needs the SageMaker SDK (v3 or v2) in smdiag's environment: it says which URIs local "
            "mode resolves",
            "pip install 'smdiag[sagemaker]' (v3), or 'smdiag[sagemaker-v2]'",
        ) from None
    stages.step(f"checking the engine for {', '.join(frameworks)} images")
    client = engine.client
    present = {}
    for tag in {t for w in wanted for t in (w.local_tag, *w.uris)}:
        with contextlib.suppress(docker.errors.ImageNotFound):
            present[tag] = (client.images.get(tag).labels or {}).get(LABEL)
    actions = plan(wanted, present, replace)
    for remembered, uris in learned:  # once the build is going ahead: a refused one leaves nothing behind
        remembered.parent.mkdir(parents=True, exist_ok=True)
        partial = remembered.with_suffix(f".{os.getpid()}.part")
        partial.write_text(json.dumps(uris))
        partial.replace(remembered)
    results = []
    for w in wanted:
        began = time.perf_counter()
        action = actions[w.framework]
        if action == "build":
            try:
                parent = _ensure_packages(client, w.framework, cache_dir, stages)
                with stages.run(w.framework, "contract layer", f"docker build {w.local_tag} (the contract layer)"):
                    _build_contract(client, w, parent, contract)
            except (docker.errors.BuildError, docker.errors.APIError) as exc:
                reason = getattr(exc, "explanation", None) or getattr(exc, "msg", None) or str(exc)
                raise Failed(
                    f"building the {w.framework} image failed: {str(reason).strip()}",
                    "make room for it (smdiag diskguard once) or see the engine's log",
                ) from None
        image = client.images.get(w.uris[0] if action == "current" else w.local_tag)
        if action != "current":
            with stages.run(w.framework, "tag", f"tagging {', '.join(w.uris)}"):
                replaced = [_tag(client, image, uri) for uri in w.uris]
                for old in filter(None, replaced):
                    _remove_if_untagged(client, old)
                _remove_stale_packages(client, w.framework)
        results.append(
            {
                "framework": w.framework,
                "action": {"build": "built", "tag": "tagged", "current": "current"}[action],
                "uris": list(w.uris),
                "image": image.id,
                "size": image.attrs["Size"],
                "seconds": round(time.perf_counter() - began, 1),
                "fingerprint": w.fingerprint,
            }
        )
        log.info("images.ready", **results[-1])
    seconds = round(time.perf_counter() - started, 1)
    return {"region": region, "images": results, "stages": stages.done, "seconds": seconds}


def _uris(framework: str, region: str, cache_dir: Path, stages: Stages, learned: list) -> tuple[str, ...]:
    """The URIs the SDK resolves, remembered in the build cache per SDK version: importing the SDK is
    most of a rebuild's time (seconds on a quiet machine, tens under load) and its answer changes only
    with its version. An unreadable memory is asked again; a new answer is added to `learned`."""
    installed = sdk.installed()
    if installed is None:
        raise ImportError("sagemaker")
    version = installed["version"]
    remembered = cache_dir / f"uris-{framework}-{_digest(version, region, repr(VERSIONS[framework]))}.json"
    with contextlib.suppress(OSError, ValueError):
        uris = tuple(json.loads(remembered.read_text()))
        if uris and all(isinstance(uri, str) for uri in uris):
            stages.reused(framework, "SDK's URIs", f"sagemaker {version}'s answer in {remembered}")
            return uris
    with stages.run(framework, "SDK's URIs", f"asking the SageMaker SDK {version} for {framework}'s URIs"):
        uris = tuple(image_uris(framework, region))
    learned.append((remembered, uris))
    return uris


def _ensure_packages(client, framework: str, cache_dir: Path, stages: Stages) -> str:
    """The framework's packages image (built over the base when the engine lacks it); its tag."""
    tag = packages_tag(framework)
    if image_present(client, tag):
        stages.reused(framework, "packages layer", f"{tag} in the engine")
        return tag
    base_tag = _ensure_base(client, cache_dir, stages)
    site = _install_packages(framework, cache_dir, stages)
    with stages.run(framework, "packages layer", f"docker build {tag} (the packages layer)"):
        _build_packages(client, tag, base_tag, site)
    return tag


def _ensure_base(client, cache_dir: Path, stages: Stages) -> str:
    base_tag = f"{BASE_REPOSITORY}:{base_fingerprint()}"
    if image_present(client, base_tag):
        return base_tag
    rootfs_tar = cache_dir / f"base-{base_fingerprint()}.tar"
    if rootfs_tar.exists():
        stages.reused(None, "base debootstrap", str(rootfs_tar))
    else:
        with stages.run(
            None, "base debootstrap", f"debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} (about a minute)"
        ):
            _debootstrap(rootfs_tar)
    with stages.run(None, "base import", f"importing the base filesystem as {base_tag}"):
        repository, tag = split_image_ref(base_tag)
        client.api.import_image_from_file(
            str(rootfs_tar), repository=repository, tag=tag, changes=[f'LABEL {LABEL}="{base_fingerprint()}"']
        )
    return base_tag


def _debootstrap(rootfs_tar: Path) -> None:
    """Debian's minimal base with python3, from Debian's mirror (no registry), as a tar for `docker import`."""
    if shutil.which("debootstrap") is None:
        raise Failed("debootstrap is not installed: the base image is made with it", "apt-get install debootstrap")
    rootfs_tar.parent.mkdir(parents=True, exist_ok=True)
    work = rootfs_tar.with_suffix(".rootfs")
    shutil.rmtree(work, ignore_errors=True)
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


def _install_packages(framework: str, cache_dir: Path, stages: Stages) -> Path:
    """The framework's packages, installed once into the build cache by the host's pip, choosing the
    image's wheels (a container here cannot reach the package index); the directory they are in."""
    ctx = packages_dir(cache_dir, framework)
    site = ctx / "site"
    if (ctx / "site.done").exists():
        stages.reused(framework, "pip install", str(site))
        return site
    shutil.rmtree(site, ignore_errors=True)
    packages = " ".join(PACKAGES[framework])
    with stages.run(framework, "pip install", f"pip install {packages} into the image (minutes, the first time)"):
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
             "--target", str(site), *wheel_selection(), *PACKAGES[framework]],
            capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise Failed(f"installing {framework}'s packages failed: {last}", "check the package index")
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's interpreter
        (ctx / "site.done").touch()
    for stale in cache_dir.glob(f"context-{framework}-*"):  # packages no longer wanted
        if stale != ctx:
            shutil.rmtree(stale, ignore_errors=True)
    return site


def packages_dir(cache_dir: Path, framework: str) -> Path:
    """Where the framework's packages are installed in the build cache (`site`, then `site.done`). Pure."""
    return cache_dir / f"context-{framework}-{_digest(*PACKAGES[framework], *wheel_selection())}"


def _build_packages(client, tag: str, base_tag: str, site: Path) -> None:
    """`docker build` of the packages layer, its context streamed by tar (a gigabyte for TensorFlow: no
    copy on disk, as docker-py's own context would make). Tagged only once tar has read every file: a
    short context could otherwise make an image that lacks some."""
    with tempfile.TemporaryDirectory(prefix="smdiag-packages-") as tmp, tempfile.TemporaryFile() as errors:
        Path(tmp, "Dockerfile").write_text(packages_dockerfile(base_tag))
        tar = subprocess.Popen(
            ["tar", "-cf", "-", "-C", tmp, "Dockerfile", "-C", str(site.parent), site.name],
            stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        try:
            chunks = iter(lambda: tar.stdout.read(CONTEXT_CHUNK), b"")
            image, _logs = client.images.build(fileobj=chunks, custom_context=True, rm=True, forcerm=True)
        finally:
            tar.stdout.close()
            code = tar.wait()
        if code != 0:
            client.images.remove(image.id)
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines() or [f"exit {code}"]
            raise Failed(f"reading the packages in {site} failed: {said[0]}", f"remove {site.parent} and build again")
    image.tag(*split_image_ref(tag))


def _build_contract(client, wanted: Wanted, parent: str, contract: Path) -> None:
    """The contract layer, from a context of five small files made in memory (nothing shared on disk, so
    builds of different contracts do not meet)."""
    entry = '#!/bin/sh\nexec python3 -m smdiag_container {} "$@"\n'
    files = {
        "Dockerfile": (dockerfile(wanted.framework, parent, wanted.fingerprint).encode(), 0o644),
        "smdiag_container.py": (contract.read_bytes(), 0o644),
        **{command: (entry.format(command).encode(), 0o755) for command in ("train", "serve", "pip3")},
    }
    context = io.BytesIO(fileops.tar_in_memory(files))
    client.images.build(fileobj=context, custom_context=True, tag=wanted.local_tag, rm=True, forcerm=True)


def _tag(client, image, uri: str) -> str | None:
    """Point `uri` at `image`; returns the id of the image it named before, if another."""
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
    with contextlib.suppress(docker.errors.APIError):
        image = client.images.get(image_id)
        if (image.labels or {}).get(LABEL) and not [t for t in image.tags if not t.startswith("smdiag/contract-")]:
            for tag in image.tags:
                client.images.remove(tag, noprune=False)


def _remove_stale_packages(client, framework: str) -> None:
    """Packages images of other inputs: untagged (an engine keeps the layers while a contract image still
    stands on them, and deletes them with it)."""
    keep = packages_tag(framework)
    for image in client.images.list(name=f"{PACKAGES_REPOSITORY}-{framework}"):
        for tag in image.tags:
            if tag != keep:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, noprune=False)


def format_result(result: dict) -> str:
    lines = []
    for image in result["images"]:
        size, uris = human_bytes(image["size"]), ", ".join(image["uris"])
        lines.append(f"{image['framework']:<10} {image['action']:<8} {size:>9}  {image['seconds']:>6.1f}s  {uris}")
    for stage in result["stages"]:
        done = f"reused: {stage['note']}" if stage["reused"] else f"{stage['seconds']:>6.1f}s"
        lines.append(f"  {stage['framework'] or '':<10} {stage['stage']:<16} {done}")
    lines.append(f"{result['seconds']:.1f}s in all")
    return "\n".join(lines)


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]
