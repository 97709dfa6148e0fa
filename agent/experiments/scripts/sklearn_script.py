"""The seed's scikit-learn experiment as a SageMaker entry point: an MLPRegressor((10,) * 5) saved with
joblib (the seed's `sklearn.externals.joblib` no longer exists), and `model_fn` for serving. Inputs and
the target are standardised inside the saved model, which predicts on the original scale. Training stops
when the validation score has not improved for a tenth of the epochs, and uses one BLAS thread (a tiny
model gains nothing from more and stalls whenever one is descheduled on a busy CPU)."""

import argparse
import os

import joblib
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


def set_seed():
    np.random.seed(0)


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def load_data(path):
    result = np.loadtxt(path, delimiter=",", ndmin=2)
    return result[:, 1], result[:, 0]


def prepare_model(epochs, learning_rate, batch_size):
    network = MLPRegressor(
        hidden_layer_sizes=(10,) * 5,
        activation="relu",
        solver="adam",
        max_iter=epochs,
        verbose=False,
        batch_size=batch_size,
        learning_rate_init=learning_rate,
        learning_rate="adaptive",
        n_iter_no_change=max(10, epochs // 10),
        early_stopping=True,
        tol=0.01,
        random_state=0,
    )
    return TransformedTargetRegressor(regressor=make_pipeline(StandardScaler(), network), transformer=StandardScaler())


def main(model_dir, train_path, epochs, learning_rate, batch_size):
    set_seed()
    model = prepare_model(epochs, learning_rate, batch_size)
    x, y = load_data(train_path)
    print(x.shape, y.shape)
    with threadpool_limits(limits=1):
        model.fit(x.reshape(-1, 1), y.reshape(-1, 1))
    print(model)
    joblib.dump(model, os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=100)
    parser.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=float, default=0.001)
    parser.add_argument("--model-out", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args = parser.parse_args()
    main(
        args.model_out, os.path.join(args.train, "training_data.csv"), args.epochs, args.learning_rate, args.batch_size
    )
