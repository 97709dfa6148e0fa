"""What smdiag's light commands cost to start, in CPU time beside a bare `python -c pass`.

A notebook's 2 vCPUs are shared with its kernels: `smdiag last-failure`, `smdiag failures list` and
`smdiag --help` should cost little more than starting Python (goal: last-failure at most 0.3 s of CPU
on an idle machine, issue 29). Each command runs in a fresh interpreter (`python -m agent`, what the
`smdiag` console script runs) against a private state dir holding one report stored as the recorder
stores it, with its bytecode written (as pip's install does); its CPU time is the child's user + system
time (os.wait4), the median of `--runs` runs taken in turns, so that the machine's load falls on every
command alike. `--compare DIR` measures another checkout (e.g. `git worktree add /tmp/before <commit>`)
in the same turns, a column each; `--imports` adds, per command, the packages its imports spent the
most time in (`-X importtime`: each module's own time, a standard-library module's counted to the
package that imported it).

    python3 -m bench.startup [--runs N] [--compare DIR ...] [--imports]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from agent.failures.classify import classify
from agent.failures.store import save
from agent.failures.types import Evidence, Report
from testbed.aws import hermetic_environment

REPO = Path(__file__).resolve().parent.parent
GOAL_COMMAND, GOAL_CPU_S = "last-failure", 0.3
COMMANDS = {"python -c pass": None, "smdiag --help": ["--help"], "smdiag last-failure": ["last-failure"],
            "smdiag failures list": ["failures", "list"]}  # fmt: skip
"""What is measured: a label and the smdiag arguments (None: the bare interpreter)."""

PULL_NO_SPACE = {
    "call": {"kind": "fit", "class_name": "TensorFlow", "instance_type": "local", "sdk": "2.257.7",
             "images": ["763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.13-cpu-py310"]},
    "exception": {"type": "CalledProcessError", "message": "Command '['docker', 'pull', '763104351884.dkr.ecr."
                  "us-east-1.amazonaws.com/tensorflow-training:2.13-cpu-py310']' returned non-zero exit status 1."},
    "docker": {"version": "25.0.8", "root_dir": "/var/lib/docker", "host": "unix:///var/run/docker.sock"},
    "pull_errors": [{"image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.13-cpu-py310",
                     "error": "failed to register layer: write /usr/local/lib/python3.10/site-packages/tensorflow/"
                     "libtensorflow_cc.so.2: no space left on device"}],
    "compose_output": [f"{layer:012x}: Downloading [{'=' * (layer % 40)}>] {layer % 900}MB/1.2GB"
                       for layer in range(0xA1B2C3D4E5, 0xA1B2C3D4E5 + 40)],
    "disks": [{"role": "docker_root", "path": "/var/lib/docker", "total": 19_000_000_000,
               "used": 18_990_000_000, "free": 10_000_000, "percent": 99.9},
              {"role": "container_root", "path": "/tmp", "total": 19_000_000_000, "used": 18_990_000_000,
               "free": 10_000_000, "percent": 99.9}],
    "df_h": "Filesystem      Size  Used Avail Use% Mounted on\n/dev/nvme0n1p1   18G   18G  9.6M 100% /\n"
            "/dev/nvme1n1    4.8G  1.1G  3.5G  24% /home/ec2-user/SageMaker",
    "platform": "notebook_instance",
}  # fmt: skip
"""A pull that filled the root volume (FAILURES.md's pull-nospace), as the guest and the engine report it."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (the median is shown)")
    parser.add_argument("--compare", type=Path, action="append", default=[], metavar="DIR",
                        help="another smdiag checkout, measured in the same turns (repeatable)")  # fmt: skip
    parser.add_argument("--imports", action="store_true", help="also where each command's imports spend time")
    args = parser.parse_args()
    checkouts = {"this checkout": REPO, **{path.name: path.resolve() for path in args.compare}}
    with tempfile.TemporaryDirectory(prefix="smdiag-bench-startup-") as work:
        env = hermetic_environment(Path(work))
        # Bytecode as an installed smdiag has it (pip compiles it): written by a first run, not counted.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        evidence = Evidence.from_dict(PULL_NO_SPACE)
        save(Report(time.time(), evidence, classify(evidence)), {}, Path(env["SMDIAG_STATE_DIR"]))
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(1 + args.runs):
            for checkout, root in checkouts.items():
                for label, smdiag_args in COMMANDS.items():
                    runs.setdefault((checkout, label), []).append(cpu_seconds(root, smdiag_args, env))
        medians = {key: statistics.median(values[1:]) for key, values in runs.items()}
        print_table(medians, checkouts, args.runs)
        if args.imports:
            for checkout, root in checkouts.items():
                for label, smdiag_args in COMMANDS.items():
                    print(f"\n{label} ({checkout}), import time by package:")
                    print(import_breakdown(root, smdiag_args, env))
    return 0


def argv(smdiag_args: list[str] | None) -> list[str]:
    return [sys.executable, "-c", "pass"] if smdiag_args is None else [sys.executable, "-m", "agent", *smdiag_args]


def cpu_seconds(root: Path, smdiag_args: list[str] | None, env: dict[str, str]) -> float:
    """The user + system CPU time of one run of the command, from the child's own resource usage."""
    with tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(argv(smdiag_args), cwd=root, env={**env, "PYTHONPATH": str(root)},
                                 stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            stderr.seek(0)
            sys.exit(f"startup: {' '.join(argv(smdiag_args))} in {root} exited {child.returncode}: "
                     f"{stderr.read().decode(errors='replace')[-2000:]}")  # fmt: skip
    return usage.ru_utime + usage.ru_stime


def print_table(medians: dict[tuple[str, str], float], checkouts: dict[str, Path], runs: int) -> None:
    widths = {checkout: max(13, len(checkout)) for checkout in checkouts}
    header = f"{'CPU seconds, median of ' + str(runs):30}"
    for checkout, width in widths.items():
        header += f" {checkout:>{width + 1}} {'x python':>9}"
    print(header)
    for label in COMMANDS:
        row = f"{label:30}"
        for checkout, width in widths.items():
            cpu = medians[(checkout, label)]
            row += f" {cpu:>{width}.3f}s {cpu / medians[(checkout, 'python -c pass')]:>8.1f}x"
        print(row)
    goal = medians[("this checkout", f"smdiag {GOAL_COMMAND}")]
    verdict = "met" if goal <= GOAL_CPU_S else "MISSED"
    print(f"goal: smdiag {GOAL_COMMAND} <= {GOAL_CPU_S} s of CPU on an idle machine: {goal:.3f} s, {verdict} "
          f"(load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")  # fmt: skip


def import_breakdown(root: Path, smdiag_args: list[str] | None, env: dict[str, str], top: int = 10) -> str:
    """The packages the command's imports spent the most time in: the self time of each module, counted
    to its top-level package, a standard-library module's to the package that imported it first (the
    interpreter's own start-up when none did)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv(smdiag_args)[1:]], cwd=root,
                          env={**env, "PYTHONPATH": str(root)}, capture_output=True, text=True)  # fmt: skip
    rows = [line.removeprefix("import time:").split("|") for line in done.stderr.splitlines()]
    rows = [(int(own), name) for own, _cumulative, name in (r for r in rows if len(r) == 3) if own.strip().isdigit()]
    spent: Counter[str] = Counter()
    importers: list[tuple[int, str]] = []  # (depth, package) of the modules whose imports are being read
    for own, name in reversed(rows):  # -X importtime prints a module after those it imported
        depth = len(name) - len(name.lstrip())
        while importers and importers[-1][0] >= depth:
            importers.pop()
        package = name.strip().split(".")[0]
        if package in sys.stdlib_module_names:
            package = importers[-1][1] if importers else "(python start-up)"
        spent[package] += own
        importers.append((depth, package))
    lines = [f"    {package:28} {micros / 1000:6.1f} ms" for package, micros in spent.most_common(top)]
    return "\n".join([*lines, f"    {'all imports':28} {sum(spent.values()) / 1000:6.1f} ms"])


if __name__ == "__main__":
    sys.exit(main())
