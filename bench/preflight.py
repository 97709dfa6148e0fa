"""How long `smdiag doctor --remote` takes to answer, against moto (the issue's goal: within 5 s), beside the
same CLI's start alone (`smdiag --version`), in one run.

The preflight asks STS, IAM, S3, SageMaker and Service Quotas (SageMaker's quotas listed after 250 others, so
the reader pages as it would on AWS); moto runs in this process (testbed/remote_aws.py), so the figures hold
the recorder's own work and moto's, not AWS's latency. Each command runs `--runs` times, in turns.

    python3 -m bench.preflight [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed.remote_aws import ACCOUNT, ManagedAws, sagemaker_quotas

GOAL_S = 5.0
INSTANCE_TYPE = "ml.g5.xlarge"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (default 7)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server would log every request
    with ManagedAws() as aws, tempfile.TemporaryDirectory(prefix="smdiag-preflight-") as workdir:
        aws.client("iam").create_role(RoleName="bench-execution", AssumeRolePolicyDocument=json.dumps(TRUST))
        role = f"arn:aws:iam::{ACCOUNT}:role/bench-execution"
        env = {**os.environ, **aws.env(Path(workdir)), "SMDIAG_STATE_DIR": str(Path(workdir) / "state"),
               "PYTHONPATH": str(root)}  # fmt: skip
        commands = {
            "smdiag --version (anchor)": [sys.executable, "-m", "agent", "--version"],
            "doctor --remote": [
                sys.executable,
                "-m",
                "agent",
                "doctor",
                "--remote",
                "--instance-type",
                INSTANCE_TYPE,
                "--role",
                role,
                "--json",
            ],  # fmt: skip
        }
        quotas = {f"{INSTANCE_TYPE} for training job usage": 4, f"{INSTANCE_TYPE} for endpoint usage": 2}
        times: dict[str, list[float]] = {name: [] for name in commands}
        with sagemaker_quotas(quotas, others=250):
            subprocess.run(commands["doctor --remote"], env=env, capture_output=True, timeout=120)  # moto warms up
            for _ in range(args.runs):
                for name, command in commands.items():
                    started = time.monotonic()
                    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
                    times[name].append(time.monotonic() - started)
                    if done.returncode != 0:
                        print(
                            f"preflight: {name} exited {done.returncode}: {done.stderr.strip()[-300:]}", file=sys.stderr
                        )
                        return 1
    anchor = statistics.median(times["smdiag --version (anchor)"])
    rows = [{"command": name, "median_s": statistics.median(t), "max_s": max(t),
             "ratio_to_anchor": statistics.median(t) / anchor} for name, t in times.items()]  # fmt: skip
    if args.json:
        print(json.dumps({"load": os.getloadavg()[0], "goal_s": GOAL_S, "rows": rows}, indent=2))
    else:
        load = os.getloadavg()[0]
        print(f"load average {load:.2f}; {args.runs} runs each, in turns; goal: doctor --remote < {GOAL_S:g} s")
        print(f"{'command':28} {'median s':>9} {'max s':>7} {'x anchor':>9}")
        for row in rows:
            print(f"{row['command']:28} {row['median_s']:9.2f} {row['max_s']:7.2f} {row['ratio_to_anchor']:9.1f}")
    return 0 if rows[1]["max_s"] < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
