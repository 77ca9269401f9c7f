"""A checkpoint cannot run code, and the package never hands user strings to a shell, eval or exec."""

from __future__ import annotations

import ast
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from rel_support import REPO, TINY, CliResult, error_lines, run_script, surface, write_npy


class _CreatesFile:
    """Unpickling this calls ``open(marker, "w")``: the file appearing proves the payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _hostile_checkpoints(folder: Path) -> list[tuple[Path, Path]]:
    """(checkpoint, marker) pairs: a torch.save zip checkpoint and a raw pickle, both with the payload inside."""
    pairs = []
    for kind in ("torch", "pickle"):
        marker = folder / f"pwned-{kind}"
        ckpt = folder / f"{kind}.ckpt"
        payload = {"state_dict": {"net.body.0.weight": _CreatesFile(marker)}, "afm_sr": {"arch": "VDSR"}}
        if kind == "torch":
            torch.save(payload, ckpt)
        else:
            ckpt.write_bytes(pickle.dumps(payload, protocol=2))
        pairs.append((ckpt, marker))
    return pairs


def test_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    """The hostile files are armed: a plain unpickle creates the marker (so the tests below can fail)."""
    (zipped, zipped_marker), (raw, raw_marker) = _hostile_checkpoints(tmp_path)
    torch.load(zipped, weights_only=False)
    pickle.loads(raw.read_bytes())
    assert zipped_marker.exists() and raw_marker.exists()


def test_enhance_refuses_a_pickled_payload(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    for ckpt, marker in _hostile_checkpoints(tmp_path):
        result = cli("enhance", src, "--model", ckpt, "--device", "cpu")
        assert not marker.exists(), "the checkpoint ran code"
        assert result.code == 2 and "Traceback" not in result.err
        assert error_lines(result.err) and "arbitrary Python objects" in error_lines(result.err)[0]
        assert str(ckpt) in error_lines(result.err)[0]


@pytest.mark.slow
def test_eval_refuses_a_pickled_payload(tmp_path: Path) -> None:
    for ckpt, marker in _hostile_checkpoints(tmp_path)[:1]:  # Lightning loads both kinds the same way
        res = run_script("eval.py", [*TINY, f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
        assert not marker.exists(), "the checkpoint ran code"
        assert res.returncode == 2, res.stderr[-2000:]
        assert "Traceback" not in res.stderr
        assert str(ckpt) in res.stderr and "afm-sr: error:" in res.stderr


#: Built-ins that run code from a string, and module functions that run a shell command.
_CODE_BUILTINS = {"eval", "exec", "compile", "__import__"}
_SHELL_FUNCTIONS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}


def _dangerous(tree: ast.AST) -> list[str]:
    """``eval(...)``, ``os.system(...)``, ``*(..., shell=<not False>)``, pickle/marshal loads and ``torch.load``
    without ``weights_only=True`` in one module (``module.eval()`` and the like are methods, not the built-in)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        builtin = isinstance(func, ast.Name) and func.id in _CODE_BUILTINS
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        name = func.attr if isinstance(func, ast.Attribute) else ""
        keywords = {k.arg: k.value for k in node.keywords}
        shell = "shell" in keywords and not (isinstance(keywords["shell"], ast.Constant)
                                             and keywords["shell"].value is False)
        unpickles = owner in ("pickle", "marshal", "dill") and name in ("load", "loads")
        unsafe_torch = (owner, name) == ("torch", "load") and not (
            isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True)
        if builtin or (owner, name) in _SHELL_FUNCTIONS or shell or unpickles or unsafe_torch:
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_scanner_finds_what_it_looks_for() -> None:
    bad = "eval(x)\nos.system(c)\nsubprocess.run(c, shell=True)\ntorch.load(p)\npickle.loads(b)\n"
    assert len(_dangerous(ast.parse(bad))) == 5
    fine = "torch.load(p, weights_only=True)\nsubprocess.run([a], shell=False)\nnet.eval()\n"
    assert _dangerous(ast.parse(fine)) == []


@pytest.mark.parametrize("module", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "afm_sr").rglob("*.py")))
def test_package_has_no_shell_eval_exec_or_unsafe_unpickling(module: str) -> None:
    assert _dangerous(ast.parse((REPO / module).read_text(encoding="utf-8"))) == []
