"""`import agent.autowrap`: turn on smdiag's failure reports in this process (see agent.guest)."""

from agent.guest.install import disabled, explained, hand_over, install  # noqa: F401 - the names users call

install()
