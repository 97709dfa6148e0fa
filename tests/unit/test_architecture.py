"""The shape of the agent package, read from its source: no import cycle, no module over 500 lines, and one
reader of a container's output."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
MAX_LINES = 500
CONTAINER_OUTPUT_READER = "agent.container_logs"
READS_A_CONTAINER = {"logs", "attach", "attach_socket"}
"""docker-py's calls that read a container's output: its logs, or its streams while it runs."""


def module_name(path: Path) -> str:
    parts = path.relative_to(AGENT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(AGENT.rglob("*.py"))}


def parse(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))


def imports_run_on_load(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported: at its top level, in a top-level
    `if`/`try`/`with`, never under `if TYPE_CHECKING` nor inside a function."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.With):
            pending += node.body
    return found


def agent_modules_imported(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The agent modules an import statement loads: each named module and the packages above it, whose
    `__init__` runs first."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
        base = node.module or ""
        if node.level:
            above = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(above + ([node.module] if node.module else []))
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    loaded = set()
    for target in targets:
        parts = target.split(".")
        loaded |= {".".join(parts[:end]) for end in range(1, len(parts) + 1) if ".".join(parts[:end]) in MODULES}
    return loaded - {name}


def import_graph() -> dict[str, set[str]]:
    return {
        name: set().union(*(agent_modules_imported(name, node) for node in imports_run_on_load(parse(name))))
        for name in MODULES
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_the_imports_a_module_runs_when_loaded():
    graph = import_graph()
    assert {"agent.diskguard", "agent.guard", "agent.guard.state", "agent"} <= graph["agent.guard.daemon"]
    assert "agent.engine" not in graph["agent.host.studio"]  # only under TYPE_CHECKING there


def test_no_import_cycle_among_agent_modules():
    assert cycles(import_graph()) == []


def test_no_agent_module_is_over_500_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, "split these along their seams"


def calls_reading_a_container(name: str) -> list[str]:
    """Where a module calls `.logs(...)`, `.attach(...)` or `.attach_socket(...)` on anything."""
    return [
        f"{MODULES[name].relative_to(AGENT.parent)}:{node.lineno}: .{node.func.attr}("
        for node in ast.walk(parse(name))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READS_A_CONTAINER
    ]


def test_container_logs_is_the_only_reader_of_a_containers_output():
    assert calls_reading_a_container(CONTAINER_OUTPUT_READER), "the reader itself is found"
    others = [name for name in MODULES if name != CONTAINER_OUTPUT_READER]
    elsewhere = [where for name in others for where in calls_reading_a_container(name)]
    assert elsewhere == [], "read a container's logs or output stream through agent.container_logs"
