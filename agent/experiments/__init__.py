"""The seed chapter's three framework experiments (TensorFlow/Keras, PyTorch, scikit-learn) on its
synthetic dataset, as the health check of a local-mode host: `smdiag health`. The frameworks themselves
are described in agent.frameworks."""
