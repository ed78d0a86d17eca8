"""The package boundaries: no import cycles, every module imports on its own, torch-free rule modules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("synth_core", "blender_addon")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
            if "engine" not in p.relative_to(ROOT / pkg).parts[:1] or pkg == "synth_core"}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module that ``name`` imports anywhere in its body (lazy imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names]  # the module, or its package if a name
        else:
            continue
        for t in targets:
            while t and t not in known:  # `from pkg import name` where name is not a module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles():
    mods = project_modules()
    graph = {name: imported(name, path, set(mods)) for name, path in mods.items()}
    assert sum(len(v) for v in graph.values()) > 50  # the walk found the real edges
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


FORK_EACH = """
import os, sys, traceback
import numpy, torch, PIL.Image, open_clip  # third-party ones once: each child then imports only the project's
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        failed.append(name)
print("FAILED", failed)
sys.exit(1 if failed else 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_every_engine_module_imports_alone_in_a_fresh_interpreter():
    """Each module in a process where no other project module was imported first (a fork per module)."""
    modules = sorted(m for m in project_modules() if m.startswith("synth_core") and not m.endswith("__main__"))
    r = subprocess.run([sys.executable, "-c", FORK_EACH, *modules], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "FAILED []" in r.stdout, (r.stdout[-500:], r.stderr[-3000:])


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("module", ["synth_core.request", "synth_core.wire", "synth_core.jobs", "synth_core.worker",
                                    "synth_core.engine", "synth_core.events", "synth_core.drawing"])
def test_rule_and_protocol_modules_import_without_torch(module):
    code = BLOCK.format(blocked=("torch", "PIL", "open_clip", "torchvision")) + (
        f"import {module}\nimport synth_core.request as r\n"
        "req = r.parse_request({'prompt': 'a red circle', 'model': 'builtin', 'offline': True})\n"
        "assert req.offline and req.strokes == 256\n"
        "assert not any(m.split('.')[0] in ('torch', 'PIL', 'open_clip') for m in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_job_never_imports_the_laboratory():
    """Training and judging the built-in model (synth_core.lab) stay off the runtime import path."""
    code = ("import sys\nfrom synth_core.jobs import run_job\n"
            "events = list(run_job({'prompt': 'a red circle', 'model': 'builtin', 'strokes': 2, 'steps': 1,"
            " 'canvas': 32, 'device': 'cpu', 'tidy': True}))\n"
            "assert events[-1]['event'] == 'done', events[-1]\n"
            "lab = sorted(m for m in sys.modules if m.startswith('synth_core.lab'))\n"
            "assert not lab, lab\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
