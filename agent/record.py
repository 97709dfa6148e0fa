"""`python -m agent.record`: the failure recorder (agent.failures.record), under the name that kernel hooks
already installed in users' environments call. Importing it installs nothing."""

import sys

from agent.failures.record import main

if __name__ == "__main__":
    sys.exit(main())
