"""Load a trained model the way its serving container would and predict: one framework per process.

    python -m agent.experiments.native_serve FRAMEWORK MODEL_DIR SCRIPTS_DIR INPUT_JSON
INPUT_JSON holds {"x": [...]}; prints {"deploy_s", "predict_s", "predictions"} as JSON on stdout.
TensorFlow: the SavedModel's serving_default signature (what TF Serving runs); PyTorch and scikit-learn:
the entry script's model_fn, then the model on a float32 array (what their model servers do). One thread,
as in training: the CPU may be busy with other kernels.
"""

import json
import sys
import time


def main(framework: str, model_dir: str, scripts_dir: str, input_path: str) -> None:
    import numpy as np

    x = np.array(json.load(open(input_path))["x"], dtype=np.float32).reshape(-1, 1)
    sys.path.insert(0, scripts_dir)
    started = time.perf_counter()
    if framework == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        serve = tf.saved_model.load(f"{model_dir}/000000001").signatures["serving_default"]
        deployed = time.perf_counter()
        outputs = serve(tf.constant(x))
        predictions = next(iter(outputs.values())).numpy()
    elif framework == "pytorch":
        import torch
        from pytorch_inference import model_fn

        torch.set_num_threads(1)
        model = model_fn(model_dir)
        deployed = time.perf_counter()
        with torch.no_grad():
            predictions = model(torch.from_numpy(x)).numpy()
    else:
        from sklearn_script import model_fn

        model = model_fn(model_dir)
        deployed = time.perf_counter()
        predictions = model.predict(x)
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "deploy_s": deployed - started,
                "predict_s": finished - deployed,
                "predictions": np.asarray(predictions, dtype=float).reshape(-1).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
