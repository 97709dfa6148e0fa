"""One framework's training and serving in one process, as the native runner starts it:

    python native_worker.py FRAMEWORK SCRIPT SERVING_SCRIPT MODEL_DIR INPUT_JSON ANSWER_JSON SCRIPT_ARGS...

First the entry script runs as `python SCRIPT SCRIPT_ARGS...` would run it (as `__main__`, with its own
directory first on sys.path and its arguments in sys.argv: what the training toolkit starts); a failure
prints its traceback from the script's frame down, as Python does, and exits 1. Then TRAINED is printed,
and the saved model is loaded from MODEL_DIR the way its serving container would (TensorFlow: the
SavedModel's serving_default signature, what TF Serving runs, SERVING_SCRIPT empty; PyTorch and
scikit-learn: SERVING_SCRIPT's model_fn, executed afresh from its file, then the model on a float32 array,
what their model servers do) and predicts INPUT_JSON's {"x": [...]}. ANSWER_JSON receives {"deploy_s",
"predict_s", "cpu_s", "predictions"}.

Serving in the process that trained spares a second import of the framework (TensorFlow's alone is
seconds of CPU), while the model still comes from the saved artifact and the serving code from its file.
Run by path, not `-m`: it imports nothing of smdiag, so the script finds the same sys.path as on its own.
"""

import importlib.util
import json
import os
import runpy
import sys
import time
import traceback

TRAINED = "smdiag-native-worker: training finished"
"""The line that tells the runner training is over and serving starts."""


def train(script: str, args: list[str]) -> None:
    """Run the entry script as its own program; exit as it would, printing its traceback on failure."""
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    except BaseException as exc:
        frames = exc.__traceback__
        while frames is not None and frames.tb_frame.f_code.co_filename != script:
            frames = frames.tb_next
        traceback.print_exception(type(exc), exc, frames or exc.__traceback__)
        sys.exit(1)


def serve(framework: str, serving_script: str, model_dir: str, x):
    """Predictions for x from the saved model; (deploy_s, predict_s, predictions)."""
    started = time.perf_counter()
    if framework == "tensorflow":
        import tensorflow as tf  # only the framework this worker runs: each takes seconds to load

        serve_fn = tf.saved_model.load(f"{model_dir}/000000001").signatures["serving_default"]
        deployed = time.perf_counter()
        predictions = next(iter(serve_fn(tf.constant(x)).values())).numpy()
    elif framework == "pytorch":
        import torch  # only the framework this worker runs

        torch.set_num_threads(1)
        model = fresh_module(serving_script).model_fn(model_dir)
        deployed = time.perf_counter()
        with torch.no_grad():
            predictions = model(torch.from_numpy(x)).numpy()
    else:
        model = fresh_module(serving_script).model_fn(model_dir)
        deployed = time.perf_counter()
        predictions = model.predict(x)
    return deployed - started, time.perf_counter() - deployed, predictions


def fresh_module(path: str):
    """The serving script executed afresh from its file, as a model server imports it (not the module the
    training script may have imported: serving must not lean on what training left behind)."""
    spec = importlib.util.spec_from_file_location("smdiag_serving_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(
    framework: str, script: str, serving_script: str, model_dir: str, input_path: str, answer_path: str, args: list[str]
) -> None:
    train(script, args)
    print(TRAINED, flush=True)
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    x = np.array(json.load(open(input_path))["x"], dtype=np.float32).reshape(-1, 1)
    deploy_s, predict_s, predictions = serve(framework, serving_script, model_dir, x)
    times = os.times()
    answer = {
        "deploy_s": deploy_s,
        "predict_s": predict_s,
        "cpu_s": times.user + times.system + times.children_user + times.children_system,
        "predictions": np.asarray(predictions, dtype=float).reshape(-1).tolist(),
    }
    with open(answer_path, "w") as out:
        json.dump(answer, out)


if __name__ == "__main__":
    main(*sys.argv[1:7], sys.argv[7:])
    # Done, the answer written: skip the interpreter's teardown of TensorFlow's or scikit-learn's modules
    # and threads, which takes seconds of CPU for nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
