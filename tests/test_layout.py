"""The package's layout: folders in pipeline order, imports that only go down, no cycles, small modules.

The layers, bottom to top (a module may import its own package and anything below it)::

    errors, masks -> config, detections, geometry -> capture, segment, prompt -> track -> session -> output
    -> ros2 -> runner -> apps (cli, web, bench, batch, remote, synth, train, evaluate)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rtseg"
LAYERS = [
    {"rtseg.errors", "rtseg.masks"},
    {"rtseg.config", "rtseg.detections", "rtseg.geometry"},
    {"rtseg.capture", "rtseg.segment", "rtseg.prompt"},
    {"rtseg.track"},
    {"rtseg.session"},
    {"rtseg.output"},
    {"rtseg.ros2"},
    {"rtseg.runner"},
    {"rtseg.cli", "rtseg.web", "rtseg.bench", "rtseg.batch", "rtseg.remote", "rtseg.synth", "rtseg.train",
     "rtseg.evaluate", "rtseg.mot"},
]
APPS = LAYERS[-1]
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """The rtseg modules ``path`` imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("rtseg")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rtseg"):
            for a in node.names:  # `from rtseg.web import jobs` imports the module rtseg.web.jobs
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
    return out


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def component(name: str) -> str:
    """The layer entry a module belongs to (``rtseg.track.tracker`` -> ``rtseg.track``)."""
    for layer in LAYERS:
        for entry in layer:
            if name == entry or name.startswith(entry + "."):
                return entry
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")


def level(name: str) -> int:
    return next(k for k, layer in enumerate(LAYERS) if component(name) in layer)


def test_no_import_cycles():
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for dep in sorted(GRAPH.get(name, ())):
            visit(dep, path + [name])
        done.add(name)

    for name in GRAPH:
        visit(name, [])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "rtseg"))
def test_imports_only_go_down(name):
    """A stage imports its own package and the layers below it, never a later stage or an app."""
    for dep in GRAPH[name]:
        if dep == "rtseg" or component(dep) == component(name):
            continue
        same_apps = component(name) in APPS and component(dep) in APPS
        assert level(dep) < level(name) or same_apps, f"{name} imports {dep}, which is above it"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small_and_say_what_they_own(name):
    text = MODULES[name].read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{name}: {len(text.splitlines())} lines (at most {MAX_LINES})"
    assert ast.get_docstring(ast.parse(text)), f"{name} has no module docstring"


def test_the_graph_is_read():
    """The test above would pass on an empty graph: check it sees the known edges."""
    assert "rtseg.session" in GRAPH["rtseg.runner"] and "rtseg.track.tracker" in GRAPH["rtseg.session"]
    assert "rtseg.web.inputs" in GRAPH["rtseg.web.app"]
