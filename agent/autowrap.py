"""`import agent.autowrap`: turn on smdiag's failure reports in this process (see agent.guest)."""

from agent.guest.wrapper import *  # noqa: F401,F403 - the names users and the kernel hook call
from agent.guest.wrapper import FailureFacts, explained, install  # noqa: F401

install()
