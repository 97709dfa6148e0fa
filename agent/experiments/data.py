"""The seed's synthetic dataset, generated as the chapter does (same seed, same calls, same order), so
that every row matches the book's bit for bit. numpy alone: the chapter's pandas and scikit-learn calls are
done with the numpy calls they make (tests/bed/test_health.py compares the files with theirs), because importing
those two would hold `health` back for seconds of CPU before any framework can start."""

from __future__ import annotations

import math
import re
from pathlib import Path

from agent.errors import BadInput

FILES = ("all_data.csv", "training_data.csv", "validation_data.csv", "test_data.csv")
MODULES = ["numpy"]
"""What generating the dataset imports."""


def formula(x: float) -> float:
    return x if x >= -2000 else -x - 4000


def generate(n_samples: int = 1000, start: int = -5000, end: int = 5000):
    """(x, y): integers in [start, end) and formula(x) plus N(150, 150) noise, numpy seed 42."""
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    np.random.seed(42)
    x = np.random.randint(low=start, high=end, size=(n_samples,)).astype(int)
    y = np.vectorize(formula)(x) + np.random.normal(150, 150, n_samples)
    return x, y


def split(x, y) -> dict[str, tuple]:
    """The seed's two train_test_split calls: 640 training, 160 validation, 200 test rows."""
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    x_train, x_validation, y_train, y_validation = train_test_split(x_train, y_train, test_size=0.2, random_state=0)
    return {
        "all_data.csv": (x, y),
        "training_data.csv": (x_train, y_train),
        "validation_data.csv": (x_validation, y_validation),
        "test_data.csv": (x_test, y_test),
    }


def train_test_split(x, y, test_size: float, random_state: int) -> tuple:
    """scikit-learn's train_test_split(x, y, test_size=..., random_state=...) of two arrays: its ShuffleSplit
    takes the first ceil(test_size * n) rows of RandomState(random_state).permutation(n) as the test set and
    the rest, in that order, as the training set."""
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    order = np.random.RandomState(random_state).permutation(len(x))
    test, train = order[: math.ceil(test_size * len(x))], order[math.ceil(test_size * len(x)) :]
    return x[train], x[test], y[train], y[test]


def write(out_dir: Path) -> dict[str, int]:
    """The four CSV files as the seed's `pandas.DataFrame({"y": y, "x": x}).to_csv(header=False,
    index=False)` writes them (y first then x, each value as numpy's shortest text of it); rows per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, (x, y) in split(*generate()).items():
        lines = [f"{y_text},{x_text}\n" for y_text, x_text in zip(y.astype(str), x.astype(str), strict=True)]
        (out_dir / name).write_text("".join(lines))
        rows[name] = len(x)
    return rows


def load(path: Path):
    """(x, y) from one of the CSV files."""
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    table = np.loadtxt(path, delimiter=",", ndmin=2)
    return table[:, 1], table[:, 0]


BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_destination(bucket: str, endpoint_url: str | None) -> None:
    """BadInput for a bucket name S3 would refuse or an endpoint that is not an http(s) URL, before any
    data is generated."""
    if not BUCKET_NAME.match(bucket):
        raise BadInput(
            f"--bucket {bucket!r} is not an S3 bucket name", "3 to 63 lower-case letters, digits, dots and hyphens"
        )
    if endpoint_url is not None and not re.match(r"^https?://[^/\s]+", endpoint_url):
        raise BadInput(f"--endpoint-url {endpoint_url!r} is not an http(s) URL", "give it like http://127.0.0.1:5000")


def upload(data_dir: Path, bucket: str, prefix: str, endpoint_url: str | None = None) -> list[str]:
    """Upload the CSV files to the seed's layout, s3://BUCKET/PREFIX/synthetic/<file>; their URIs."""
    import boto3  # only an upload needs it, and it takes a good part of a second to import

    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    uris = []
    for name in FILES:
        key = f"{prefix.strip('/')}/synthetic/{name}" if prefix.strip("/") else f"synthetic/{name}"
        s3.upload_file(str(data_dir / name), bucket, key)
        uris.append(f"s3://{bucket}/{key}")
    return uris
