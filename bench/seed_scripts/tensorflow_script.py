"""The seed's tensorflow_script.py (see README.md for the few changes)."""

import os

import numpy as np
import tensorflow as tf
from numpy.random import seed
from tensorflow.keras import Input
from tensorflow.keras.layers import Dense
from tensorflow.keras.models import Sequential


def set_seed():
    seed(42)
    tf.random.set_seed(42)


def load_data(training_data_location):
    result = np.loadtxt(open(training_data_location, "rb"), delimiter=",")
    y = result[:, 0]
    x = result[:, 1]
    return (x, y)


def prepare_model():
    model = Sequential(
        [
            Input(shape=(1,)),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(100, activation=tf.nn.leaky_relu),
            Dense(1),
        ]
    )
    model.compile(loss="mean_squared_error", optimizer="adam")
    return model


def main(model_dir, train_path, val_path, batch_size=200, epochs=2000):
    set_seed()
    model = prepare_model()
    model.summary()
    x, y = load_data(train_path)
    print("x.shape:", x.shape)
    print("y.shape:", y.shape)
    x_val, y_val = load_data(val_path)
    print("x_val.shape:", x_val.shape)
    print("y_val.shape:", y_val.shape)
    model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val))
    model.export(os.path.join(model_dir, "000000001"))  # Keras 3's tf.saved_model.save with its signature


if __name__ == "__main__":
    main(
        model_dir=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"),
        train_path=os.path.join(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"), "training_data.csv"),
        val_path=os.path.join(
            os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"), "validation_data.csv"
        ),
        batch_size=200,
        epochs=1000,
    )
