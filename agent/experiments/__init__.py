"""The seed chapter's three framework experiments (TensorFlow/Keras, PyTorch, scikit-learn) on its
synthetic dataset, as the health check of a local-mode host: `smdiag health`."""

FRAMEWORKS = ("tensorflow", "pytorch", "sklearn")
