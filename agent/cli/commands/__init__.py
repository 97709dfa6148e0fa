"""The commands, one module per group (agent.cli.app mounts them, each with its one line and its section in
`--help`, as pip's commands_dict).

Every command module loads for `--help` and for `last-failure`, which must stay light (no SDK, docker-py,
psutil or framework) whatever the library grows to import: so each command imports the library modules it
calls inside its body, and a module's top holds only typer, agent.errors and agent.cli's own parts.
"""
