"""Benchmark of `smdiag diskguard`: planning time over 500 images, and the idle CPU of `diskguard run`.

Planning is pure, so it runs on generated data (parent chains, containers, tags, use times). The idle
CPU is measured on a real engine of the test bed (root; see tests/install-bed.sh): a guard started,
then left alone while psutil reads its CPU time (goal: under 0.5% of one core).

    python3 -m bench.diskguard [--images 500] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from agent.guard.plan import Container, Image, Policy, plan_pruning
from testbed import bed


def synthetic(count: int, seed: int = 7) -> tuple[list[Image], list[Container]]:
    rng = random.Random(seed)
    now = time.time()
    images: list[Image] = []
    for index in range(count):
        parent = images[rng.randrange(len(images))].id if images and rng.random() < 0.3 else ""
        tags = () if rng.random() < 0.1 else tuple(f"repo{index}/img:{t}" for t in range(rng.randint(1, 3)))
        images.append(
            Image(
                id=f"sha256:{index:064x}",
                tags=tags,
                unique_bytes=rng.randint(1, 2000) * 2**20,
                parent=parent,
                arrived=now - rng.uniform(0, 30 * 86400),
                last_used=now - rng.uniform(0, 30 * 86400) if rng.random() < 0.6 else None,
            )
        )
    containers = [
        Container(
            id=f"c{index}",
            name=f"job{index}",
            image_id=images[rng.randrange(count)].id,
            running=rng.random() < 0.2,
            finished=now - rng.uniform(0, 5 * 86400),
            failed=rng.random() < 0.3,
            bytes=rng.randint(0, 100) * 2**20,
        )
        for index in range(count // 5)
    ]
    return images, containers


def bench_planning(count: int) -> None:
    images, containers = synthetic(count)
    policy = Policy.build(85, 75, ["sagemaker-.*"], "10m", "24h")
    runs = []
    for _ in range(20):
        started = time.perf_counter()
        plan = plan_pruning(images, containers, 3 * 2**30, policy, time.time())
        runs.append(time.perf_counter() - started)
    print(
        f"planning over {count} images, {len(containers)} containers: median {statistics.median(runs) * 1000:.1f} ms, "
        f"max {max(runs) * 1000:.1f} ms ({len(plan.steps)} steps, {len(plan.kept)} kept)"
    )


def bench_idle(seconds: float) -> None:
    bed.check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="smdiag-bench-"))
    with bed.engine_on_disk(work, 300) as (daemon, _disk):
        env = {**os.environ, "DOCKER_HOST": daemon.host, "SMDIAG_STATE_DIR": str(work / "state")}
        guard = subprocess.Popen(
            [sys.executable, "-m", "agent", "diskguard", "run", "--interval", "60"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(5)  # start-up (imports, first check) is not idle time
            process = psutil.Process(guard.pid)
            before = process.cpu_times()
            time.sleep(seconds)
            after = process.cpu_times()
        finally:
            guard.terminate()
            guard.wait(30)
    busy = (after.user - before.user) + (after.system - before.system)
    print(
        f"idle `diskguard run` over {seconds:.0f} s: {busy * 1000:.0f} ms CPU = {100 * busy / seconds:.3f}% of one core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    bench_planning(args.images)
    bench_idle(args.idle_seconds)


if __name__ == "__main__":
    main()
