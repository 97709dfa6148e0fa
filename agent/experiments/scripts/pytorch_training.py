"""The seed's PyTorch experiment as a SageMaker training entry point; saves model.pth (a state_dict) that
pytorch_inference.model_fn loads. Fixed from the seed: the DataLoader is built once (the seed's
num_workers=2 spawned worker processes every epoch); one thread (a tiny model gains nothing from more and
stalls whenever one of them is descheduled on a busy CPU); the learning rate anneals to zero (cosine) so
the last epochs settle instead of jittering around the minimum."""

import argparse
import os
import random
import sys

import numpy as np
import torch
import torch.utils.data as data

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_inference import X_SCALE, Y_SCALE, Regressor  # noqa: E402


def set_seed():
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)


def load_data(path):
    result = np.loadtxt(path, delimiter=",", ndmin=2)
    x = torch.tensor(result[:, 1].reshape(-1, 1), dtype=torch.float32)
    y = torch.tensor(result[:, 0].reshape(-1, 1), dtype=torch.float32)
    return x, y


def train(model, x, y, epochs, learning_rate, batch_size):
    loader = data.DataLoader(data.TensorDataset(x / X_SCALE, y / Y_SCALE), batch_size=batch_size, shuffle=True)
    loss_fn = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    model.train()
    for epoch in range(epochs):
        for batch_x, batch_y in loader:
            loss = loss_fn(model.net(batch_x), batch_y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        if epoch % 50 == 0:
            print("Iteration:", epoch, "\t| Loss:", loss.item())
    return model


def main(model_dir, train_path, epochs, learning_rate, batch_size):
    set_seed()
    torch.set_num_threads(1)
    x, y = load_data(train_path)
    print("x.shape:", x.shape)
    model = train(Regressor(), x, y, epochs, learning_rate, batch_size)
    torch.save(model.state_dict(), os.path.join(model_dir, "model.pth"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=100)
    parser.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=float, default=0.001)
    parser.add_argument("--model-out", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args = parser.parse_args()
    main(
        args.model_out, os.path.join(args.train, "training_data.csv"), args.epochs, args.learning_rate, args.batch_size
    )
