"""A user's kernel cell: SageMaker SDK v2 local-mode `Estimator.fit()` of IMAGE, offline (telemetry off, local
code), run by the tests where the kernel hook is on (tests/test_onstart.py, tests/test_studio.py).

    python guest_fit.py IMAGE

Nothing of smdiag is imported: the hook wraps the SDK by itself. A failing fit prints its exception (type,
message, notes) as one JSON line and exits 3.
"""

import json
import sys

from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession

session = LocalSession(
    sagemaker_config={"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
)
session.config = {"local": {"local_code": True}}
try:
    Estimator(
        image_uri=sys.argv[1],
        role="arn:aws:iam::111111111111:role/dummy",
        instance_count=1,
        instance_type="local",
        sagemaker_session=session,
    ).fit()
except Exception as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}))
    sys.exit(3)
