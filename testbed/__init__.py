"""The real test bed the tests and the benches share: private Docker engines on loop-mounted disks, a local
registry, the SDK environments, the reproductions of real failures, and the programs run in users' place.
Import it from the repository's root (`python3 -m bench.NAME`, or pytest, whose `pythonpath` is the root)."""

from pathlib import Path

TESTBED = Path(__file__).resolve().parent
"""Where the bed's scripts are, for the tests that run one in a fresh interpreter."""
