"""smdiag: bootstrap and diagnostics agent for SageMaker notebook instances and local-mode Docker hosts.

Kept import-free so that `import agent` (from a kernel or the CLI) costs nothing. The kernel hook copies
this file as its package's `__init__.py` (see agent.host.kernels).
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """`%load_ext agent`: turn on failure reports for local-mode fit/deploy in this kernel."""
    from .guest.install import install  # lazy: `import agent` must stay free

    install()
