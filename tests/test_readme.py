"""README.md, executed: every Python block runs as shown and prints (or returns) what its comments say;
the options, defaults, API signatures, demos, files and links it names exist; the examples run.

Each Python block runs in a fresh interpreter (or, where its expression values are compared, in a fresh
namespace) inside a temporary directory.  A block that trains longer than a few seconds runs with a
reduced setting, named where it is applied.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from cli_helpers import main_exit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
README_PATH = os.path.join(ROOT, "README.md")
with open(README_PATH, encoding="utf-8") as _fh:
    README = _fh.read()
# One BLAS thread: two threads that wait on each other are slow when other processes share the cores.
ENV = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

BLOCKS = [(lang, code) for lang, code in re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)]
PYTHON_BLOCKS = [code for lang, code in BLOCKS if lang == "python"]
PROSE = re.sub(r"^```.*?^```", "", README, flags=re.S | re.M)  # the README without its code blocks

# One marker per Python block: each block is tested below under its marker.
MARKERS = {
    "ten_lines": "w = cr.tensor([2.0, -3.0, -3.0], requires_grad=True)",
    "hessian": "(g,) = cr.autograd.grad(f, x, create_graph=True)",
    "op_class": "class Tanh(Function):",
    "torch_loop": "for x, y in train:",
    "fit": "from chainrule.train import fit",
    "train_step": "from chainrule.train import TrainStep",
    "explain": "cr.explain(f)",
    "func": "func.classify_critical_point(H)",
}


def block(key: str) -> str:
    found = [code for code in PYTHON_BLOCKS if MARKERS[key] in code]
    assert len(found) == 1, f"README: expected one Python block containing {MARKERS[key]!r}, found {len(found)}"
    return found[0]


def run_python(code: str, cwd, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter in ``cwd``; its stdout (fails with stderr on an error)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=ENV,
                          timeout=timeout)
    assert done.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n{done.stderr}"
    return done.stdout


def print_comments(code: str) -> list[str]:
    """The comment after each ``print(...)`` line: what the README says that line prints."""
    return [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s*#\s*(.*)$", code, flags=re.M)]


def floats(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text.replace("−", "-"))]


def test_every_python_block_is_tested():
    for code in PYTHON_BLOCKS:
        keys = [key for key, marker in MARKERS.items() if marker in code]
        assert len(keys) == 1, f"a README Python block with no test (or several markers):\n{code}"
    assert len(PYTHON_BLOCKS) == len(MARKERS)


# --------------------------------------------------------------------------------------------------
# the Python blocks
# --------------------------------------------------------------------------------------------------

def test_ten_lines_of_backprop_prints_what_its_comments_say(tmp_path):
    code = block("ten_lines")
    lines = run_python(code, tmp_path).splitlines()
    expected = print_comments(code)
    assert len(lines) == len(expected) == 2
    for line, comment in zip(lines, expected):
        # the comment is the printed text, possibly followed by an explanation ("  = f (1 - f) x")
        assert comment == line or comment.startswith(line + " "), (line, comment)
    f, grad = floats(lines[0])[0], floats(lines[1])
    np.testing.assert_allclose(grad, f * (1 - f) * np.array([-1.0, -2.0, 1.0]), atol=1e-4)  # = f (1 - f) x


def test_hessian_block(tmp_path):
    code = block("hessian")
    out = run_python(code + "\nprint(g.tolist())\n", tmp_path)
    H = np.array(floats(out.split("dtype")[0])).reshape(3, 3)         # print(H): a float64 tensor
    g = floats(out.strip().splitlines()[-1])
    comment = print_comments(code)[0]
    expected = ast.literal_eval(re.match(r"(\[\[.*?\]\])", comment).group(1))
    np.testing.assert_array_equal(H, expected)
    assert g == [0.0, 0.0, 0.0]                                         # "g = 0 here: a critical point"
    assert "positive definite" in comment and np.all(np.linalg.eigvalsh(H) > 0)


def test_how_an_op_is_written_block_is_a_working_op():
    """The Tanh class shown is ops.Tanh; exec'd as shown, it is a correct, twice-differentiable op."""
    from chainrule.autograd import gradcheck, gradgradcheck, ops
    from chainrule.autograd.function import Function

    code = block("op_class")
    namespace = {"Function": Function, "np": np}
    exec(code, namespace)
    Tanh = namespace["Tanh"]
    assert Tanh.__doc__ == ops.Tanh.__doc__
    assert (Tanh.saves_inputs, Tanh.saves_output) == (ops.Tanh.saves_inputs, ops.Tanh.saves_output)
    assert "src/chainrule/autograd/ops.py" in README and os.path.exists(os.path.join(SRC, "chainrule/autograd/ops.py"))

    x = cr.tensor(np.linspace(-2, 2, 7), dtype=cr.float64, requires_grad=True)
    np.testing.assert_allclose(Tanh.apply(x).detach().numpy(), np.tanh(x.detach().numpy()))
    assert gradcheck(lambda t: Tanh.apply(t), (x,))
    assert gradgradcheck(lambda t: Tanh.apply(t), (x,))
    y = Tanh.apply(x)                                       # backward_np agrees with backward
    g = np.linspace(0.5, 1.5, 7)
    np.testing.assert_allclose(y.grad_fn.backward_np(g), y.grad_fn.backward(cr.tensor(g)).detach().numpy())


def test_pytorch_loop_and_fit_blocks(tmp_path):
    """The training loop as shown (one epoch on MNIST), then the fit block that continues it.

    Reduced setting: fit runs 2 epochs instead of the README's 5."""
    loop, fit_block = block("torch_loop"), block("fit")
    assert "epochs=5" in fit_block
    check_loop = (
        "\n_x, _y = next(iter(train))  # the loop's comment: x float32 (128, 784) in [0, 1], y int64 (128,)\n"
        "assert _x.dtype == cr.float32 and tuple(_x.shape) == (128, 784), (_x.dtype, _x.shape)\n"
        "assert 0.0 <= float(_x.min()) and float(_x.max()) <= 1.0 and float(_x.max()) > 0.5\n"
        "assert _y.dtype == cr.int64 and tuple(_y.shape) == (128,), (_y.dtype, _y.shape)\n"
        "assert float(loss) < 0.5, float(loss)\n"
    )
    report = (
        "\nimport json, os\n"
        "print(json.dumps({'keys': sorted(history.history), 'val_accuracy': history.history['val_accuracy'],"
        " 'runs': sorted(os.listdir('runs'))}))\n"
    )
    out = run_python(loop + check_loop + fit_block.replace("epochs=5", "epochs=2") + report, tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    comment = fit_block.split("# per-epoch lists:")[1].strip()
    for key in re.findall(r"\w+", comment):                 # loss, accuracy, val_loss, val_accuracy, lr
        assert key in result["keys"], (key, result["keys"])
    assert len(result["val_accuracy"]) == 2 and result["val_accuracy"][-1] > 0.9
    assert result["runs"] == ["best.safetensors", "last.safetensors"]   # ModelCheckpoint, as the prose says

    path = tmp_path / "mlp.safetensors"                      # "loads in torch's safetensors loader too"
    state = cr.load(str(path))
    assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert tuple(state["0.weight"].shape) == (256, 784)
    st = pytest.importorskip("safetensors.torch")
    assert {k: tuple(v.shape) for k, v in st.load_file(str(path)).items()} == {
        k: tuple(v.shape) for k, v in state.items()}


def explain_table(out: str) -> tuple[dict, dict]:
    """The first row of each gate in an explain table -> (value, upstream, local, downstream); the grads."""
    rows = {}
    for m in re.finditer(r"^\s*\d+\s+(\S+)\s+\S+\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s*$",
                         out, flags=re.M):
        rows.setdefault(m.group(1), tuple(float(v) for v in m.groups()[1:]))
    grads = {k: float(v) for k, v in re.findall(r"(\w+) = (-?\d+\.\d+)", out.split("gradients:")[1])}
    return rows, grads


@pytest.mark.parametrize("prelude", ["", "import chainrule.viz\n", "from chainrule.explain import explain\n"],
                         ids=["as-shown", "after-importing-viz", "after-importing-the-module"])
def test_explain_block_prints_the_trace_in_its_comment(tmp_path, prelude):
    """``cr.explain(f)`` works as shown, whatever was imported before (importing the submodule binds
    ``chainrule.explain`` to the module, which is callable)."""
    code = block("explain")
    out = run_python(prelude + code, tmp_path)
    rows, grads = explain_table(out)
    comment = " ".join(line.split("#", 1)[1] for line in code.splitlines()[-2:])
    assert rows["1/x"][0] == float(re.search(r"output (-?[\d.]+)", comment).group(1))
    up, local, down = map(float, re.search(r"1/x: upstream (\S+), local (\S+), downstream (\S+);", comment).groups())
    assert rows["1/x"][1:] == (up, local, down)
    assert rows["+1"][3] == float(re.search(r"\+1: (\S+);", comment).group(1))
    local, down = map(float, re.search(r"exp: local (\S+), downstream (\S+);", comment).groups())
    assert rows["exp"][2:] == (local, down)
    expected = {k: float(v) for k, v in re.findall(r"\bd([wx]\d) (-?[\d.]+)", comment)}
    assert grads == expected


def repl(code: str, cwd) -> list:
    """Run ``code`` as a REPL would, in a fresh namespace in ``cwd``: the values of its expression lines."""
    values, namespace = [], {"__name__": "__readme__"}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for stmt in ast.parse(code).body:
            if isinstance(stmt, ast.Expr):
                values.append(eval(compile(ast.Expression(stmt.value), "<README>", "eval"), namespace))
            else:
                exec(compile(ast.Module([stmt], []), "<README>", "exec"), namespace)
    finally:
        os.chdir(old)
    return values


def test_func_block_classifies_as_its_comments_say(tmp_path):
    code = block("func")
    values = repl(code, tmp_path)
    comments = re.findall(r"#\s*'(\w+)':\s*eigenvalues(.*)$", code, flags=re.M)
    assert len(values) == len(comments) == 2
    for value, (kind, rest) in zip(values, comments):
        assert value == kind
        np.testing.assert_allclose(sorted(value.eigenvalues), sorted(floats(rest)), atol=1e-3)


# --------------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------------


def train_subparser():
    from chainrule import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_version_matches_the_package(capsys):
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as fh:
        pyproject = fh.read()
    version = re.search(r'^version = "(.+)"$', pyproject, flags=re.M).group(1)
    code, out, _ = main_exit(capsys, "--version")
    assert code == 0 and out.strip() == f"chainrule {version}" == f"chainrule {cr.__version__}"
    assert 'chainrule = "chainrule.cli:main"' in pyproject                 # the `chainrule` command
    assert re.search(r"^test = \[", pyproject, flags=re.M)                # pip install -e ".[test]"
    assert '"data/mnist/*.gz"' in pyproject                                # MNIST ships in the wheel


def test_every_command_in_the_readme_has_help(capsys):
    commands = set(re.findall(r"^chainrule (\w+)", "\n".join(c for lang, c in BLOCKS if lang == "bash"), re.M))
    assert commands == {"train", "evaluate", "predict", "demo"}
    for command in sorted(commands):
        code, out, _ = main_exit(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: chainrule {command}")


def test_train_options_and_defaults_are_as_listed():
    from chainrule import cli

    paragraph = PROSE.split("`chainrule train` options:")[1].split("Every command has")[0]
    listed = dict(re.findall(r"`(--[a-z-]+)(?: ([^`]*))?`", paragraph))
    actions = {opt: a for a in train_subparser()["train"]._actions for opt in a.option_strings}
    documented = {a.option_strings[0] for a in train_subparser()["train"]._actions
                  if a.help != "==SUPPRESS==" and a.option_strings[0] != "-h"}
    assert set(listed) == documented
    for option, value in listed.items():
        if "|" in value:
            assert value.split("|") == list(actions[option].choices), option
        elif value and value.isupper():
            assert actions[option].metavar == value, option
    assert cli.DEFAULTS["hidden"] == [int(v) for v in listed["--hidden"].split(",")]
    # "784-512-256-10 ReLU MLP" and "SGD with Nesterov momentum 0.9, one-cycle learning rate peaking at 0.1,
    # batch 128, 10 epochs"
    assert "784-512-256-10 ReLU MLP" in README
    assert (cli.DEFAULTS["activation"], cli.DEFAULTS["optimizer"], cli.DEFAULTS["momentum"]) == ("relu", "sgd", 0.9)
    assert (cli.DEFAULTS["schedule"], cli.DEFAULT_LR["sgd"]) == ("onecycle", 0.1)
    assert (cli.DEFAULTS["batch_size"], cli.DEFAULTS["epochs"]) == (128, 10)
    assert "Nesterov" in actions["--optimizer"].help
    assert "one BLAS thread unless `--threads`" in README and "default: 1" in actions["--threads"].help


def test_train_evaluate_predict_as_in_the_readme(tmp_path, capsys, monkeypatch):
    """``chainrule train`` (reduced: 2,000 images, one epoch), then evaluate and predict its model file."""
    monkeypatch.chdir(tmp_path)
    code, out, err = main_exit(capsys, "train", "--epochs", "1", "--limit", "2000")
    assert code == 0, err
    epoch_line = next(line for line in (out + err).splitlines() if line.startswith("Epoch"))
    for item in ("loss", "test loss", "test accuracy", "samples/s"):    # per epoch, as the README says
        assert item in epoch_line, (item, epoch_line)
    assert "wall time" in out
    assert os.listdir(tmp_path) == ["chainrule-mnist.safetensors"]   # "writes the model to ..."

    code, out, err = main_exit(capsys, "evaluate", "chainrule-mnist.safetensors", "--limit", "2000")
    assert code == 0, err
    assert "loss" in out and "accuracy" in out and "Per-class accuracy" in out      # test loss, accuracy, per-class

    code, out, err = main_exit(capsys, "predict", "chainrule-mnist.safetensors", "7")
    assert code == 0, err
    assert "test image #7" in out and "Predicted:" in out


def test_bad_option_is_a_one_line_error_naming_the_command(capsys):
    code, out, err = main_exit(capsys, "train", "--no-such-option")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("chainrule train: error:") and "--no-such-option" in err


# --------------------------------------------------------------------------------------------------
# demos and examples
# --------------------------------------------------------------------------------------------------

def demo_table() -> dict[str, str]:
    section = README.split("### Demos: `chainrule demo NAME`")[1].split("**Where the lecture slides")[0]
    return dict(re.findall(r"^\| `([a-z-]+)` \| (.*) \|$", section, flags=re.M))


def test_demo_table_lists_every_demo(capsys):
    from chainrule import demos

    assert sorted(demo_table()) == sorted(demos.DEMOS)
    code, out, _ = main_exit(capsys, "demo", "--help")
    assert code == 0 and ", ".join(sorted(demos.DEMOS)) in " ".join(out.split())


def test_demo_numbers_in_the_table(tmp_path):
    """The table's numbers, from the demos whose fast run gives the full run's numbers."""
    from chainrule import demos

    table = demo_table()
    r = demos.run("sigmoid-gate", fast=True, out_dir=tmp_path, quiet=True)
    shown = dict(re.findall(r"(\w+) (−?\d+\.\d+)", table["sigmoid-gate"]))
    assert {k: float(v.replace("−", "-")) for k, v in shown.items()} == {
        k: round(r[k], 2) for k in shown}
    assert os.path.basename(r["dot"]) == "sigmoid_gate.dot"          # its graph, as DOT text

    r = demos.run("and-gate", fast=True, out_dir=tmp_path, quiet=True)
    np.testing.assert_allclose(r["and"], floats(table["and-gate"].split(":")[1].split("—")[0]), rtol=0.01)

    r = demos.run("gradient-descent", fast=True, out_dir=tmp_path, quiet=True)
    np.testing.assert_allclose(r["x"], [-1, -1, -1], atol=1e-3)
    assert abs(r["f"] + 1) < 1e-6 and r["kind"] == "minimum"
    np.testing.assert_allclose(r["eigenvalues"], floats(table["gradient-descent"].split("eigenvalues")[1])[:3],
                               atol=1e-3)

    r = demos.run("deep-linear", fast=True, out_dir=tmp_path, quiet=True)
    assert r["max_abs_diff"] < 1e-12                                   # "agree to ~1e-13"

    r = demos.run("xor", fast=True, out_dir=tmp_path, quiet=True)      # reduced: fewer training steps
    assert r["linear_best_accuracy"] <= 0.75 and abs(r["linear_loss"] - math.log(2)) < 0.01
    assert r["hidden_accuracy"] == 1.0

    r = demos.run("saddle-point", fast=True, out_dir=tmp_path, quiet=True)
    assert r["stuck_y_max"] == 0.0 and r["momentum_escape_step"] < r["nudged_escape_step"]


EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path):
    """Every script in examples/ runs (with --fast where it has one), figures written into tmp_path."""
    path = os.path.join(ROOT, "examples", name)
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    args = (["--fast"] if '"--fast"' in source else []) + (["--out", str(tmp_path)] if '"--out"' in source else [])
    done = subprocess.run([sys.executable, path, *args], capture_output=True, text=True, cwd=tmp_path, env=ENV,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    usage = re.search(r"python examples/" + re.escape(name) + r"(.*)", source)
    assert usage, f"{name}: the docstring shows how to run it"
    for flag in re.findall(r"--\w+", usage.group(1)):                # the flags its docstring shows exist
        assert f'"{flag}"' in source, (name, flag)


# --------------------------------------------------------------------------------------------------
# names, signatures, files, links
# --------------------------------------------------------------------------------------------------

def _modules(section: str = "") -> list:
    """Where a name the README shows is looked up: first the section's own modules, then everywhere."""
    for sub in ("autograd", "data", "data.datasets", "demos", "func", "io", "nn", "nn.functional", "optim", "plot",
                "scalar", "train", "viz"):
        importlib.import_module(f"chainrule.{sub}")
    preferred = {
        "The autograd core": [cr, cr.Tensor, cr.autograd],
        "Or Keras-style": [cr.train],
        "The pieces": [cr.nn, cr.optim, cr.optim.SGD, cr.nn.Module, cr.data, cr.data.datasets, cr.io],
        "The scalar engine": [cr.scalar, cr.scalar.Value],
        "Function transforms": [cr.func],
        "Plots": [cr.plot],
        "Demos": [cr.demos],
    }
    first = next((mods for key, mods in preferred.items() if section.startswith(key)), [])
    return first + [cr, cr.autograd, cr.train, cr.nn, cr.optim, cr.optim.lr_scheduler, cr.data, cr.data.datasets,
                    cr.func, cr.viz, cr.plot, cr.scalar, cr.io, cr.demos, cr.Tensor, cr.nn.Module, cr.optim.SGD,
                    cr.scalar.Value]


def resolve(name: str, section: str = ""):
    """``chainrule.io.save_checkpoint``, ``nn.Parameter``, ``fit``, ... -> the object, or None."""
    parts = name.split(".")
    if parts[0] == "chainrule":
        parts = parts[1:]
    for base in _modules(section):
        obj = base
        for part in parts:
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    return None


def signatures_in_prose() -> list[tuple[str, ast.Call, str]]:
    """The inline code spans that look like a signature, ``name(param, ..., key=default)``, with the title of
    the README section they are in."""
    found = []
    for section in re.split(r"^#+ ", PROSE, flags=re.M):
        title = section.split("\n", 1)[0]
        for span in re.findall(r"`([^`]+)`", section):
            if not re.match(r"^[\w.]+\(.*\)$", span, flags=re.S):
                continue
            try:
                call = ast.parse(" ".join(span.split()), mode="eval").body
            except SyntaxError:
                continue
            if isinstance(call, ast.Call) and all(isinstance(a, (ast.Name, ast.Starred)) for a in call.args) and (
                    call.args or call.keywords):
                found.append((span, call, title))
    return found


def test_signatures_in_the_prose_match_the_code():
    """Every ``f(a, b, key=value)`` the README shows names real parameters, in order."""
    checked = []
    for span, call, section in signatures_in_prose():
        name = ast.unparse(call.func)
        obj = resolve(name, section)
        assert obj is not None, f"README names {name!r}, which chainrule does not have"
        params = list(inspect.signature(obj).parameters)
        positions = []
        for arg in call.args:
            if isinstance(arg, ast.Starred):
                assert any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(obj).parameters.values()), span
                continue
            if arg.id in params:
                positions.append(params.index(arg.id))
            else:  # the README's name for a positional parameter, e.g. predict(model, x) for x_or_loader
                k = positions[-1] + 1 if positions else 0
                while k < len(params) and params[k] == "self":
                    k += 1
                assert k < len(params), (span, params)
                kind = inspect.signature(obj).parameters[params[k]].kind
                assert kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD, kind.VAR_POSITIONAL), (span, params)
                positions.append(k - 1 if kind == kind.VAR_POSITIONAL else k)  # *args takes any number
        assert positions == sorted(positions), (span, params)
        for kw in call.keywords:
            assert kw.arg in params, f"{span}: {name} has no parameter {kw.arg!r} ({params})"
        checked.append(name)
    assert len(checked) > 25


@pytest.mark.parametrize("span, defaults", [
    ("chainrule.autograd.grad(", {"grad_outputs": None, "retain_graph": None, "create_graph": False,
                                  "allow_unused": False}),
    ("chainrule.autograd.gradcheck(", {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}),
    ("fit(", {"epochs": 1, "val_loader": None, "metrics": ("accuracy",), "callbacks": (), "scheduler": None,
              "verbose": 1, "replay": "auto"}),
    ("TrainStep(", {"replay": "auto"}),
    ("datasets.MNIST(", {"root": None, "train": True, "flatten": False}),
    ("zero_grad(", {"set_to_none": True}),
])
def test_defaults_in_the_prose_match_the_code(span, defaults):
    matches = [(s, c, t) for s, c, t in signatures_in_prose() if s.startswith(span)]
    assert len(matches) == 1, span
    text, call, section = matches[0]
    shown = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    assert shown == defaults, text
    params = inspect.signature(resolve(ast.unparse(call.func), section)).parameters
    for key, value in shown.items():
        assert params[key].default == value, (text, key, params[key].default)


def test_train_step_block(tmp_path):
    """The TrainStep block continues the loop: one more epoch, replayed after the first two steps."""
    loop, step_block = block("torch_loop"), block("train_step")
    report = ("\nassert step.problem is None, step.problem\n"
              "print(step.replays, float(loss))\n")
    out = run_python(loop + step_block + report, tmp_path)
    replays, loss = out.split()
    assert int(replays) == 469 - 3     # 468 full batches of 128 and a last one of 96: two recordings each
    assert float(loss) < 0.5


def test_names_in_the_tables_exist():
    import chainrule.nn.functional as F
    from chainrule import data, nn, optim, scalar, train

    def names(row_label):
        row = next(line for line in README.splitlines() if line.startswith(f"| {row_label} |"))
        return re.findall(r"`([A-Za-z_][\w.]*)`", row.split("|")[2])

    for label in ("factories", "arithmetic", "reductions", "activations", "no-grad ops"):
        for name in names(label):
            assert name in ("dim", "keepdim") or hasattr(cr, name), (label, name)
    for name in ("ProgressBar", "EarlyStopping", "ConvergenceCriterion", "LRSchedulerCallback", "ModelCheckpoint",
                 "TerminateOnNaN", "CSVLogger", "History", "fit", "evaluate", "predict"):
        assert hasattr(train, name), name
    for row_label in ("`chainrule.nn`", "activations", "losses"):
        for name in names(row_label):
            if name[0].isupper() and "." not in name:
                assert hasattr(nn, name), (row_label, name)
    for name in names("`nn.init`, `nn.functional`"):
        assert hasattr(nn.init, name) or name.endswith("_") and hasattr(nn.init, name.split("/")[0]), name
    assert hasattr(F, "cross_entropy")
    for name in names("`optim.lr_scheduler`"):
        assert hasattr(optim.lr_scheduler, name), name
    for name in ("Adam", "AdamW", "RMSprop", "Adagrad", "SGD"):
        assert hasattr(optim, name)
    for name in names("toy data"):
        assert name == "chainrule.data.toy" or hasattr(data.toy, name), name
    for name in ("Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader"):
        assert hasattr(data, name)
    for name in ("maximum", "Neuron", "Layer", "MLP"):
        assert hasattr(scalar, name)
    for name in ("reciprocal", "add_const", "scale", "exp", "log", "tanh", "sigmoid", "relu", "neg", "backward"):
        assert hasattr(scalar.Value, name)
    assert hasattr(scalar.MLP, "load_weights")
    for name in ("plot_history", "plot_decision_boundary", "plot_first_layer_weights", "plot_descent_paths"):
        assert hasattr(cr.plot, name)
    for name in ("grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "classify_critical_point"):
        assert hasattr(cr.func, name)
    assert callable(cr.explain) and "accumulate" in inspect.signature(cr.explain).parameters
    assert hasattr(cr.autograd, "detect_anomaly") and hasattr(cr.autograd, "gradgradcheck")


def test_files_and_links_exist():
    paths = set(re.findall(r"\]\(([^)#\s]+)\)", README))                  # markdown links
    paths |= {p for p in re.findall(r"`([\w./-]+)`", PROSE) if re.match(r"^(src|tests|benchmarks|examples)/", p)}
    assert paths, "the README names no files?"
    for path in sorted(paths):
        if "://" not in path:
            assert os.path.exists(os.path.join(ROOT, path)), f"README names {path}, which does not exist"
    shipped = os.path.join(SRC, "chainrule", "data", "mnist")            # "MNIST (shipped, offline)"
    assert sorted(f for f in os.listdir(shipped) if f.endswith(".gz")) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz"]
