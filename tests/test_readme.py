"""README.md and the documentation in docs/ name only what exists.

* Every fenced ``python`` block compiles, and every name it imports from
  utrans (``from utrans.x import a``, ``import utrans.x``) exists.
* Every command of a fenced ``bash`` block that runs utrans
  (``utrans ...``, ``utrans-annotate ...``, ``python 0N_.../script.py ...``,
  ``python -c "..."``) is checked: its ``--help`` is run (in this process) and
  every option the example uses must appear in it; ``python -c`` code must
  compile. Nothing else is executed.
* Every ``utrans.x.y`` name and every repository path (``utrans/...py``,
  ``tests/...py``) quoted in the prose resolves.

A block preceded by ``<!-- needs-data -->`` needs files the repository does
not ship (your dataset, an SDS archive, the reference folder); the marker
tells the reader, and the block is checked the same way, since nothing is
run. The examples that do run without such files are executed by the tests
of their features (the demos, the annotate and preset tests).
"""

import ast
import contextlib
import importlib
import importlib.util
import io
import pathlib
import re
import runpy
import shlex
import sys

import pytest

from utrans.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS_DATA = "<!-- needs-data -->"

_FENCE = re.compile(r"^```(\w*)\s*$")
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_DOTTED = re.compile(r"\butrans(?:\.[A-Za-z_]\w*)+")
_PATH = re.compile(r"`((?:utrans|tests|benchmarks|notebooks|01_train|02_test|03_read)/[\w/.-]+)`")


def blocks(path):
    """Fenced blocks of a markdown file: ``(language, code, needs_data, line)``."""
    out, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        before = [line for line in lines[:start] if line.strip()]
        needs_data = bool(before) and before[-1].strip() == NEEDS_DATA
        out.append((match.group(1), "\n".join(lines[start + 1:j]), needs_data, start + 1))
        i = j + 1
    return out


def prose(path):
    """The text of a markdown file outside its fenced blocks."""
    text, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            text.append(line)
    return "\n".join(text)


def all_blocks(language):
    return [pytest.param(code, id=f"{path.name}:{line}")
            for path in DOCUMENTS for lang, code, _, line in blocks(path) if lang == language]


def commands(code):
    """The commands of a bash block, each a token list (continuations joined, comments dropped)."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        current = []
        for token in tokens + ["&&"]:
            if token in ("&&", "||", ";", "|"):
                while current and re.match(r"^[A-Z_][A-Z0-9_]*=", current[0]):
                    current.pop(0)  # environment assignments before a command
                if current:
                    out.append(current)
                current = []
            else:
                current.append(token)
    return out


def resolve(dotted):
    """Import the longest module prefix of ``dotted`` and get the rest as attributes."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError as err:
            if err.name is not None and not ".".join(parts[:k]).startswith(err.name):
                raise  # a dependency of the module is missing, not the module itself
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


_HELP = {}


def help_text(argv):
    """The ``--help`` output of ``utrans ARGV --help`` or of a numbered script (cached)."""
    key = tuple(argv)
    if key not in _HELP:
        out = io.StringIO()
        saved = sys.argv
        try:
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
                if argv[0].endswith(".py"):
                    sys.argv = [argv[0], "--help"]
                    runpy.run_path(str(ROOT / argv[0]), run_name="__main__")
                else:
                    main([*argv, "--help"])
                    raise SystemExit(0)  # `utrans --help` returns instead of exiting
        finally:
            sys.argv = saved
        assert exit_info.value.code in (0, None), f"{' '.join(argv)} --help failed: {out.getvalue()}"
        _HELP[key] = out.getvalue()
    return _HELP[key]


def command_help(tokens):
    """``(help_argv, used_arguments)`` for a utrans command, or ``None`` for other commands."""
    name = pathlib.PurePath(tokens[0]).name
    if name in ("utrans", "utrans-annotate"):
        args = tokens[1:] if name == "utrans" else ["annotate", *tokens[1:]]
        if not args:
            return [], []
        if args[0] in ("train", "test", "read"):
            return args[:2], args[2:]
        return args[:1], args[1:]
    if name in ("python", "python3") and len(tokens) > 1 and re.match(r"0[123]_\w+/\w+\.py$",
                                                                       tokens[1]):
        return [tokens[1]], tokens[2:]
    return None


@pytest.mark.parametrize("code", all_blocks("python"))
def test_python_block_compiles_and_imports_exist(code):
    tree = compile(code, "<block>", "exec", flags=ast.PyCF_ONLY_AST)
    modules = {}  # names bound to utrans modules: their attributes are checked too
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "utrans":
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                value = getattr(module, alias.name)
                if isinstance(value, type(module)):
                    modules[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "utrans":
                    importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            assert hasattr(modules[node.value.id], node.attr), \
                f"{modules[node.value.id].__name__} has no {node.attr}"
    for dotted in set(_DOTTED.findall(code)):
        resolve(dotted)


@pytest.mark.parametrize("code", all_blocks("bash"))
def test_bash_commands_use_existing_options(code):
    for tokens in commands(code):
        if tokens[:2] in (["python", "-c"], ["python3", "-c"]):
            compile(tokens[2], "<python -c>", "exec")
            continue
        if tokens[:2] in (["python", "-m"], ["python3", "-m"]) and tokens[2].startswith("utrans"):
            spec = importlib.util.find_spec(tokens[2])
            runnable = spec is not None and (spec.submodule_search_locations is None
                                             or importlib.util.find_spec(tokens[2] + ".__main__"))
            assert runnable, f"python -m {tokens[2]}: not a runnable module"
            continue
        found = command_help(tokens)
        if found is None:
            continue
        help_argv, used = found
        if help_argv and help_argv[0] == "list" and not used:
            continue  # `utrans list` takes no options
        text = help_text(help_argv) if help_argv else help_text([])
        known = set(_OPTION.findall(text))
        options = {u.split("=", 1)[0] for u in used if re.match(r"^--?[A-Za-z]", u)}
        unknown = sorted(options - known)
        assert not unknown, f"{' '.join(tokens)}: options {unknown} are not in its --help"


def test_every_command_block_is_recognised():
    # The extraction above must see the commands the documents show; a change of
    # fence or syntax that hides them would make the option check pass vacuously.
    seen = [command_help(t) for path in DOCUMENTS for lang, code, _, _ in blocks(path)
            if lang == "bash" for t in commands(code)]
    helps = {tuple(h[0][:1]) for h in seen if h and h[0]}
    assert {("annotate",), ("compare",), ("01_train/trainer6.py",), ("02_test/tester6.py",),
            ("03_read/reader6.py",)} <= helps


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_names_and_paths_in_prose_exist(path):
    text = prose(path)
    for dotted in sorted(set(_DOTTED.findall(text))):
        resolve(dotted)
    for rel in sorted(set(_PATH.findall(text))):
        rel = re.sub(r"(trainer|tester|reader)N\.py$", r"\g<1>0.py", rel)  # "every script N"
        assert (ROOT / rel).exists(), f"{path.name} names {rel}, which does not exist"


def test_readme_keeps_the_ci_command_and_the_slow_tests_command():
    readme = [b for b in blocks(ROOT / "README.md") if b[0] == "bash"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split("<!-- ci:test -->", 1)[1].lstrip().splitlines()
    assert after[0] == "```bash" and "python -m pytest" in after[1]
    assert any(code.strip() == "python -m pytest -n 2 -m slow" for _, code, _, _ in readme)


def test_architecture_page_quotes_the_import_contracts_of_setup_cfg():
    cfg = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    contracts = cfg[cfg.index("[importlinter]"):].strip()
    quoted = [code for lang, code, _, _ in blocks(ROOT / "docs" / "architecture.md")
              if lang == "ini"]
    assert quoted and quoted[0].strip() == contracts


def test_models_page_lists_every_registered_model():
    from utrans.models import list_models  # imports Keras: only this test needs it

    text = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    named = set()
    for span in re.findall(r"`([\w{},]+)`", text):
        names = [""]
        for part in re.split(r"(\{[^}]*\})", span):
            options = part[1:-1].split(",") if part.startswith("{") else [part]
            names = [n + o for n in names for o in options]
        named.update(names)
    missing = sorted(set(list_models()) - named)
    assert not missing, f"docs/models.md does not list {missing}"
