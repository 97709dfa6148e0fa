"""smdiag: bootstrap and diagnostics agent for SageMaker notebook instances and local-mode Docker hosts.

Kept import-free so that `import agent` (from a kernel or the CLI) costs nothing.
"""

__version__ = "0.1.0"
