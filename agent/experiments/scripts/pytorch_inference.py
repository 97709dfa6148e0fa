"""The seed's PyTorch network and its SageMaker inference handler (`model_fn`).

Eight hidden Linear(50) layers with ReLU and Dropout(0.01), as the seed; `Regressor` scales the input
and the output inside the model so that it trains reliably and serves the original scale.
"""

import os

import torch

X_SCALE, Y_SCALE = 5000.0, 1000.0


def prepare_network():
    layers = [torch.nn.Linear(1, 50), torch.nn.ReLU()]
    for _ in range(7):
        layers += [torch.nn.Linear(50, 50), torch.nn.Dropout(0.01), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(50, 1))
    return torch.nn.Sequential(*layers)


class Regressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = prepare_network()

    def forward(self, x):
        return self.net(x / X_SCALE) * Y_SCALE


def model_fn(model_dir):
    model = Regressor()
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), map_location="cpu", weights_only=True))
    model.eval()
    return model
