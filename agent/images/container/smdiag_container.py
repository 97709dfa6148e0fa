"""SageMaker's container contract, as the offline images built by `smdiag images build` honour it.

Runs inside those images (`train` and `serve` on PATH call it), with the image's Python and framework
and nothing else: the standard library here, the framework only where a model is loaded or called.

- `train`: what the SageMaker training toolkit does for a script-mode estimator: reads
  /opt/ml/input/config (hyperparameters, channels, hosts), exports the SM_* environment, runs the entry
  script from /opt/ml/code with the hyperparameters as `--name value` arguments, and on failure writes
  /opt/ml/output/failure and exits with the script's code.
- `serve`: GET /ping and POST /invocations on port 8080. TensorFlow answers TF Serving's REST contract
  from the SavedModel (`{"instances": [...]}` -> `{"predictions": [...]}`); PyTorch and scikit-learn
  call the entry script's handlers (`model_fn`, and `input_fn` / `predict_fn` / `output_fn` when the script
  has them) as the SageMaker inference toolkit does, with its content types (application/x-npy,
  application/json, text/csv).
- `pip3`: SDK v3's training driver (`sm_train.sh`, run by `ModelTrainer` with a `SourceCode`) refuses an image
  without a pip on PATH, though it never runs it (a `requirements` is installed with `python3 -m pip`, which
  these offline images lack); this one only says that nothing can be installed here. The image's default
  command is `train`: v3 without a `SourceCode` runs the image's own command.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPT_ML = Path(os.environ.get("SMDIAG_OPT_ML", "/opt/ml"))
FRAMEWORK = os.environ.get("SMDIAG_FRAMEWORK", "")
PORT = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
NPY, JSON, CSV = "application/x-npy", "application/json", "text/csv"


class BadRequest(Exception):
    """A request the model cannot take: answered 4xx with the reason, the server goes on."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------ train


def decode_hyperparameters(raw: dict) -> dict:
    """SageMaker writes each hyperparameter JSON-encoded into a string; the toolkit decodes them. Pure."""
    decoded = {}
    for name, value in raw.items():
        try:
            decoded[name] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            decoded[name] = value
    return decoded


def training_environment(opt_ml: Path, hyperparameters: dict, channels: list[str], resources: dict) -> dict:
    """The SM_* variables the toolkit exports (the ones scripts read). Pure."""
    user = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    env = {
        "SM_MODEL_DIR": str(opt_ml / "model"),
        "SM_INPUT_DIR": str(opt_ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(opt_ml / "input" / "config"),
        "SM_OUTPUT_DIR": str(opt_ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(user),
        "SM_HOSTS": json.dumps(resources.get("hosts", ["algo-1"])),
        "SM_CURRENT_HOST": resources.get("current_host", "algo-1"),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_NAME": Path(str(hyperparameters.get("sagemaker_program", ""))).stem,
        "SM_MODULE_DIR": str(opt_ml / "code"),
        "SM_USER_ARGS": json.dumps(command_arguments(user)),
        "SM_FRAMEWORK_MODULE": FRAMEWORK,
    }
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(opt_ml / "input" / "data" / channel)
    for name, value in user.items():
        env[f"SM_HP_{name.upper().replace('-', '_')}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def command_arguments(hyperparameters: dict) -> list[str]:
    """`--name value` pairs in the toolkit's spelling (strings bare, everything else as JSON). Pure."""
    args = []
    for name, value in sorted(hyperparameters.items()):
        args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    return args


def train(opt_ml: Path = OPT_ML) -> int:
    config = opt_ml / "input" / "config"
    hyperparameters = decode_hyperparameters(_read_json(config / "hyperparameters.json", {}))
    channels = list(_read_json(config / "inputdataconfig.json", {}))
    resources = _read_json(config / "resourceconfig.json", {})
    program = hyperparameters.get("sagemaker_program")
    code = opt_ml / "code"
    if not program or not (code / str(program)).is_file():
        return _training_failed(
            opt_ml, f"no entry script: sagemaker_program={program!r} is not in {code} (give entry_point and local code)"
        )
    if (code / "requirements.txt").exists():
        print("smdiag contract image: requirements.txt is not installed (this image is offline)", flush=True)
    env = {**os.environ, **training_environment(opt_ml, hyperparameters, channels, resources)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH", "")]))
    user = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    argv = [sys.executable, str(code / str(program)), *command_arguments(user)]
    for directory in (opt_ml / "model", opt_ml / "output" / "data"):
        directory.mkdir(parents=True, exist_ok=True)
    print(f"Invoking user script: {' '.join(argv[1:])}", flush=True)
    code_run = subprocess.run(argv, cwd=code, env=env).returncode
    if code_run != 0:
        return _training_failed(opt_ml, f"the entry script {program} exited with code {code_run}", code_run)
    print("Reporting training SUCCESS", flush=True)
    return 0


def _training_failed(opt_ml: Path, message: str, code: int = 1) -> int:
    print(f"Reporting training FAILURE: {message}", file=sys.stderr, flush=True)
    (opt_ml / "output").mkdir(parents=True, exist_ok=True)
    (opt_ml / "output" / "failure").write_text(message + "\n")
    return code


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


# ------------------------------------------------------------------------------------------------ serve


def decode(body: bytes, content_type: str):
    """The inference toolkit's decoders: a request body to a numpy array."""
    import numpy as np

    kind = (content_type or JSON).split(";")[0].strip()
    try:
        if kind == NPY:
            return np.load(io.BytesIO(body), allow_pickle=False)
        if kind == JSON:
            return np.asarray(json.loads(body))
        if kind == CSV:
            return np.genfromtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
    except ValueError as exc:
        raise BadRequest(f"cannot decode the {kind} body: {exc}") from None
    raise BadRequest(f"unsupported content type {kind!r}: send {NPY}, {JSON} or {CSV}", 415)


def encode(prediction, accept: str) -> tuple[bytes, str]:
    """The inference toolkit's encoders: a prediction (array, tensor, list) to a response body."""
    import numpy as np

    if hasattr(prediction, "detach"):  # a torch tensor
        prediction = prediction.detach().cpu().numpy()
    kind = (accept or JSON).split(",")[0].split(";")[0].strip()
    if kind in ("", "*/*"):
        kind = JSON
    array = np.asarray(prediction)
    if kind == NPY:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue(), NPY
    if kind == JSON:
        return json.dumps(array.tolist()).encode(), JSON
    if kind == CSV:
        buffer = io.StringIO()
        np.savetxt(buffer, array.reshape(len(array), -1), delimiter=",", fmt="%s")
        return buffer.getvalue().encode(), CSV
    raise BadRequest(f"unsupported accept type {kind!r}: ask for {NPY}, {JSON} or {CSV}", 406)


class ScriptModel:
    """PyTorch and scikit-learn serving: the entry script's handlers, or the toolkit's defaults."""

    def __init__(self, model_dir: Path, code_dir: Path, program: str) -> None:
        sys.path.insert(0, str(code_dir))
        self.module = importlib.import_module(Path(program).stem) if program else None
        if not hasattr(self.module, "model_fn"):
            raise RuntimeError(f"the entry script {program or '(none: set SAGEMAKER_PROGRAM)'} has no model_fn")
        self.model = self.module.model_fn(str(model_dir))

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        handler = getattr(self.module, "input_fn", None)
        data = handler(body, content_type) if handler else decode(body, content_type)
        handler = getattr(self.module, "predict_fn", None)
        prediction = handler(data, self.model) if handler else default_predict(data, self.model)
        handler = getattr(self.module, "output_fn", None)
        if handler:
            answer = handler(prediction, accept)
            return (answer if isinstance(answer, bytes) else str(answer).encode()), accept or JSON
        return encode(prediction, accept)


def default_predict(data, model):
    if FRAMEWORK == "pytorch":
        import torch

        with torch.no_grad():
            return model(torch.as_tensor(data, dtype=torch.float32))
    return model.predict(data)


class SavedModel:
    """TensorFlow serving: TF Serving's REST predict API over the newest SavedModel version."""

    def __init__(self, model_dir: Path) -> None:
        import tensorflow as tf

        versions = sorted(
            (p for p in model_dir.iterdir() if p.name.isdigit() and p.is_dir()), key=lambda p: int(p.name)
        )
        if not versions and (model_dir / "saved_model.pb").exists():
            versions = [model_dir]
        if not versions:
            raise RuntimeError(f"no SavedModel in {model_dir}: expected {model_dir}/<version>/saved_model.pb")
        self.tf = tf
        self.function = tf.saved_model.load(str(versions[-1])).signatures["serving_default"]
        self.inputs = self.function.structured_input_signature[1]

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(request, dict) or not ({"instances", "inputs"} & set(request)):
            raise BadRequest('expected {"instances": [...]} (row format) or {"inputs": ...} (columnar format)')
        rows = "instances" in request
        given = request["instances"] if rows else request["inputs"]
        if len(self.inputs) == 1:
            [(name, spec)] = self.inputs.items()
            if rows and given and isinstance(given[0], dict):
                given = [row[name] for row in given]
            feed = {name: self.tf.constant(given, dtype=spec.dtype)}
        elif rows:
            feed = {
                name: self.tf.constant([row[name] for row in given], dtype=spec.dtype)
                for name, spec in self.inputs.items()
            }
        else:
            feed = {name: self.tf.constant(given[name], dtype=spec.dtype) for name, spec in self.inputs.items()}
        outputs = {name: value.numpy().tolist() for name, value in self.function(**feed).items()}
        if rows:
            if len(outputs) == 1:
                answer = {"predictions": next(iter(outputs.values()))}
            else:
                count = len(next(iter(outputs.values())))
                answer = {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}
        else:
            answer = {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
        return json.dumps(answer).encode(), JSON


def load_model(model_dir: Path, code_dir: Path, program: str):
    if FRAMEWORK == "tensorflow":
        return SavedModel(model_dir)
    return ScriptModel(model_dir, code_dir, program)


def make_handler(model, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] == "/ping":
                self._answer(200, b"", "text/plain")
            else:
                self._answer(404, b'{"error": "not found"}', JSON)

        def do_POST(self):  # noqa: N802
            if self.path.split("?")[0] != "/invocations":
                self._answer(404, b'{"error": "not found"}', JSON)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                with lock:
                    answer, kind = model.invoke(
                        body, self.headers.get("Content-Type", ""), self.headers.get("Accept", "")
                    )
                self._answer(200, answer, kind)
            except BadRequest as exc:
                self._answer(exc.status, json.dumps({"error": str(exc)}).encode(), JSON)
            except Exception as exc:  # noqa: BLE001 - the model's own error, answered as the toolkit does
                traceback.print_exc()
                self._answer(500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode(), JSON)

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 - http.server's signature
            print(f"{self.address_string()} {format % args}", flush=True)

    return Handler


def serve(opt_ml: Path = OPT_ML) -> int:
    """Load the model first (a failure exits with the traceback), then answer on PORT."""
    program = os.environ.get("SAGEMAKER_PROGRAM", "")
    code_dir = Path(os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", str(opt_ml / "code")))
    model = load_model(opt_ml / "model", code_dir, program)
    server = ThreadingHTTPServer(("0.0.0.0", PORT), make_handler(model, threading.Lock()))
    print(f"smdiag contract image ({FRAMEWORK}): serving on port {PORT}", flush=True)
    server.serve_forever()
    return 0


# ------------------------------------------------------------------------------------------------ pip3


def pip() -> int:
    """Packages come with the image (`smdiag images build`): nothing can be installed from inside it."""
    print(
        "smdiag contract image: pip cannot install packages here (the image is offline); "
        "add them to the image instead of a requirements file",
        file=sys.stderr,
        flush=True,
    )
    return 1


if __name__ == "__main__":
    sys.exit({"train": train, "serve": serve, "pip3": pip}[sys.argv[1]]())
