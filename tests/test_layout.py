"""The layout's rules: no module imports app.py, and the project's modules import no circle."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = {name[:-3] for name in os.listdir(ROOT) if name.endswith(".py")}


def imports_of(module: str) -> set[str]:
    """The project's modules that ``module`` imports, wherever in the file."""
    with open(os.path.join(ROOT, f"{module}.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & MODULES


GRAPH = {module: imports_of(module) for module in MODULES}


def test_no_module_imports_the_app():
    assert [module for module, imported in GRAPH.items() if "app" in imported] == []


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started."""
    found = []

    def visit(module, path):
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                found.append(path[path.index(imported):] + [imported])
            else:
                visit(imported, path + [imported])

    for module in sorted(graph):
        visit(module, [module])
    return found


def test_no_import_circles():
    assert circles(GRAPH) == []


def test_the_check_sees_a_circle():
    """The walk above can fail: a made-up circle through three modules is found."""
    made_up = {"booking": {"scheduling"}, "scheduling": {"reports"}, "reports": {"booking"}, "models": set()}

    assert ["booking", "scheduling", "reports", "booking"] in circles(made_up)
