"""The seed's TensorFlow/Keras experiment as a SageMaker training entry point.

Seven Dense(100, leaky_relu) layers and Dense(1), trained with Adam on mean squared error, saved as a
TensorFlow Serving SavedModel under <model_dir>/000000001. Inputs and outputs are scaled inside the
model, so the network trains reliably and still takes and returns the original scale (TF Serving's
{"instances": [[100], [200]]} works unchanged). One thread for TensorFlow's ops (a tiny model gains nothing
from more and stalls whenever one is descheduled on a busy CPU); the learning rate decays to zero (cosine)
so the last epochs settle.
"""

import argparse
import os

import numpy as np
import tensorflow as tf
from tensorflow import keras

X_SCALE, Y_SCALE = 5000.0, 1000.0


def set_seed():
    keras.utils.set_random_seed(42)  # numpy, python and TensorFlow


def load_data(path):
    result = np.loadtxt(path, delimiter=",", ndmin=2)
    return result[:, 1].reshape(-1, 1), result[:, 0].reshape(-1, 1)


def limit_threads():
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def prepare_model(learning_rate, decay_steps):
    model = keras.Sequential(
        [keras.Input(shape=(1,)), keras.layers.Rescaling(1.0 / X_SCALE)]
        + [keras.layers.Dense(100, activation=tf.nn.leaky_relu) for _ in range(7)]
        + [keras.layers.Dense(1), keras.layers.Rescaling(Y_SCALE)]
    )
    model.compile(
        loss="mean_squared_error",
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)),
    )
    # Built now rather than inside fit's first trace of the training step: variables created while tracing
    # make TensorFlow trace that step a second time (about a second of CPU).
    model.optimizer.build(model.trainable_variables)
    return model


def main(model_dir, train_path, val_path, batch_size, epochs, learning_rate):
    set_seed()
    limit_threads()
    x, y = load_data(train_path)
    model = prepare_model(learning_rate, decay_steps=epochs * -(-len(x) // batch_size))
    x_val, y_val = load_data(val_path)
    print("x.shape:", x.shape, "x_val.shape:", x_val.shape)
    model.fit(
        x=x,
        y=y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_val, y_val),
        validation_freq=epochs,  # once, at the end: every epoch would triple the training time
        verbose=2,
    )
    model.export(os.path.join(model_dir, "000000001"))


def arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=200)
    parser.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=float, default=0.001)
    parser.add_argument("--model_dir", "--model-dir", dest="s3_model_dir")  # the TF estimator passes it; unused
    parser.add_argument("--model-out", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument(
        "--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    main(
        model_dir=args.model_out,
        train_path=os.path.join(args.train, "training_data.csv"),
        val_path=os.path.join(args.validation, "validation_data.csv"),
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
    )
