"""Property-based fuzzing of `keras-vae` (hypothesis): inputs nobody listed.

The property is the one the package promises (docs/bad-input.md): a command
either succeeds or exits with its documented code (2 for bad input) and one
message that names the input. It never prints "Traceback", never raises out
of `keras_vae.cli.main`, and leaves no half-made run or export.

Each generator runs in two profiles: a fast one in the default suite (a few
examples each), and a long one under the `slow` marker (`make test-fuzz`,
run by CI) with hundreds of examples each. Failing examples go to
tests/fuzz-examples/ (hypothesis's database), which replays them first on
the machine that found them; hypothesis drops an example from it once it
passes, so the database is not committed: each case found is kept as a
plain test (tests/test_bad_input.py, test_sources.py).
"""

import contextlib
import importlib.util
import io
import json
import math
import os
import shutil
import string
import sys
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.extra import numpy as hnp

from keras_vae import cli
from keras_vae.runs import config as config_lib

DATABASE = DirectoryBasedExampleDatabase(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz-examples"))
FAST = settings(max_examples=8, deadline=None, database=DATABASE,
                suppress_health_check=list(HealthCheck))
LONG = settings(FAST, max_examples=400)
#: A dataset that cannot be found: a valid option then ends at the data,
#: quickly, with its own message (exit 2), and an invalid one before it.
MISSING = "npz:/nonexistent/keras-vae-fuzz.npz"
#: The options that pick where a run starts, or a cluster, rather than a value.
NOT_FUZZED = {"dataset", "data_dir", "strategy"}
OPTIONS = sorted(set(config_lib.options()) - NOT_FUZZED)
_TINY = ["--epochs", "1", "--limit", "16", "--hidden-units", "4", "--latent-dim", "2",
         "--batch-size", "8"]

# Values of the wrong type, out of range, empty, huge, NaN, unicode, null.
VALUES = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=string.printable, max_size=8),
    st.integers(min_value=-2**70, max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "null", "None", "nan", "-inf", "1e400", "0", "-1", "1,2",
                     "1,,2", "true", "yes", "[]", "{}", "\u00e9\u4e2d", "1" * 400]),
)


def run_cli(argv):
    """`(exit code, output)` of `keras-vae argv`, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse's own refusals
            code = exit_.code
    return code, out.getvalue() + err.getvalue()


def check_property(argv, codes=(0, 2), leaves_no=()):
    """Run `argv`; assert the promised outcome; return `(code, output)`."""
    code, output = run_cli(argv)
    assert code in codes, (argv, code, output[-1500:])
    assert "Traceback" not in output, (argv, output[-3000:])
    if code == 2:
        assert "error:" in output, (argv, output[-1500:])
    if code != 0:
        for path in leaves_no:
            assert not os.path.exists(path), (argv, f"{path} was left behind")
    return code, output


# === options and config files ===
def _flag_property(option, value, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("flag") / "run")
    check_property(["train", f"--{option.replace('_', '-')}", value, "--dataset", MISSING,
                    "--run-dir", run_dir], codes=(2,), leaves_no=[run_dir])


@FAST
@given(option=st.sampled_from(OPTIONS), value=VALUES)
def test_fuzz_train_options(option, value, tmp_path_factory):
    _flag_property(option, value, tmp_path_factory)


@pytest.mark.slow
@LONG
@given(option=st.sampled_from(OPTIONS), value=VALUES)
def test_fuzz_train_options_long(option, value, tmp_path_factory):
    _flag_property(option, value, tmp_path_factory)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
KEYS = st.one_of(st.sampled_from(OPTIONS), st.text(max_size=12))
CONFIGS = st.one_of(
    st.dictionaries(KEYS, JSON_VALUES | VALUES, max_size=5),
    JSON_VALUES,
    st.integers(0, 300).map(lambda depth: "[" * depth + "]" * depth),
    st.binary(max_size=64),
)


def _config_property(content, suffix, tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")
    path = folder / f"run{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str) and content.startswith("["):
        path.write_text(content)
    elif suffix == ".json":
        path.write_text(json.dumps(content, allow_nan=True))
    else:
        path.write_text(yaml.safe_dump(content, allow_unicode=True))
    run_dir = str(folder / "run")
    check_property(["train", "--config", str(path), "--dataset", MISSING,
                    "--run-dir", run_dir], codes=(2,), leaves_no=[run_dir])


@FAST
@given(content=CONFIGS, suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_fuzz_config_files(content, suffix, tmp_path_factory):
    _config_property(content, suffix, tmp_path_factory)


@pytest.mark.slow
@LONG
@given(content=CONFIGS, suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_fuzz_config_files_long(content, suffix, tmp_path_factory):
    _config_property(content, suffix, tmp_path_factory)


# === data: npz files and folders of images ===
DTYPES = st.sampled_from(["uint8", "int16", "int64", "float16", "float32", "float64", "bool",
                          "complex64", "U3"])
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9)


@st.composite
def arrays(draw):
    dtype = draw(DTYPES)
    shape = draw(SHAPES)
    if dtype == "U3":
        return np.array(draw(st.lists(st.text(max_size=3), min_size=1, max_size=6)))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def npz_files(draw):
    layout = draw(st.sampled_from(["x", "x_train/x_test", "other"]))
    names = {"x": ["x", "y"], "x_train/x_test": ["x_train", "x_test", "y_train", "y_test"],
             "other": ["images"]}[layout]
    return {name: draw(arrays()) for name in names if name.startswith(("x", "i"))
            or draw(st.booleans())}


def _npz_property(contents, tmp_path_factory):
    folder = tmp_path_factory.mktemp("npz")
    np.savez(folder / "data.npz", **contents)
    out = folder / "shards"
    check_property(["convert", f"npz:{folder / 'data.npz'}", str(out)],
                   leaves_no=[out / "dataset.json"])


@FAST
@given(contents=npz_files())
def test_fuzz_npz_sources(contents, tmp_path_factory):
    _npz_property(contents, tmp_path_factory)


@pytest.mark.slow
@LONG
@given(contents=npz_files())
def test_fuzz_npz_sources_long(contents, tmp_path_factory):
    _npz_property(contents, tmp_path_factory)


@st.composite
def image_files(draw):
    """(name, bytes) of small images in odd modes, sizes and formats, and junk."""
    from PIL import Image

    files = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["png", "jpeg", "junk", "empty", "truncated"]))
        if kind in ("junk", "empty"):
            data = draw(st.binary(max_size=40)) if kind == "junk" else b""
            files.append((f"f{i}.png", data))
            continue
        mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "I;16", "1", "LA"]))
        if kind == "jpeg" and mode not in ("L", "RGB"):
            mode = "RGB"
        size = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
        image = Image.new(mode, size, color=draw(st.integers(0, 255)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG" if kind == "jpeg" else "PNG")
        data = buffer.getvalue()
        if kind == "truncated":
            data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
        subfolder = draw(st.sampled_from(["", "a/", "b/"]))
        files.append((f"{subfolder}f{i}.{'jpg' if kind == 'jpeg' else 'png'}", data))
    return files


def _folder_property(files, size, tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    source = folder / "photos"
    source.mkdir()
    for name, data in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    out = folder / "shards"
    argv = ["convert", f"images:{source}", str(out)] + (["--image-size", size] if size else [])
    check_property(argv, leaves_no=[out / "dataset.json"])


@FAST
@given(files=image_files(), size=st.sampled_from([None, "8x8", "0x3", "3x", "9x99999"]))
def test_fuzz_image_folders(files, size, tmp_path_factory):
    _folder_property(files, size, tmp_path_factory)


@pytest.mark.slow
@LONG
@given(files=image_files(), size=st.sampled_from([None, "8x8", "0x3", "3x", "9x99999"]))
def test_fuzz_image_folders_long(files, size, tmp_path_factory):
    _folder_property(files, size, tmp_path_factory)


# === run directories with edited or damaged files ===
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run on 40 random 8×8 images (4 held out): every command on it is quick."""
    folder = tmp_path_factory.mktemp("fuzz-run")
    np.savez(folder / "data.npz", x=np.random.default_rng(0).integers(0, 256, (40, 8, 8),
                                                                      "uint8"))
    run_dir = str(folder / "run")
    code, output = run_cli(["train", *_TINY, "--dataset", f"npz:{folder / 'data.npz'}",
                            "--run-dir", run_dir])
    assert code == 0, output
    return run_dir


DAMAGE = st.one_of(
    st.tuples(st.just("config.json"), st.sampled_from(["json", "bytes", "truncate"])),
    st.tuples(st.sampled_from(["model.keras", "history.csv", "evaluation.json"]),
              st.sampled_from(["bytes", "truncate", "delete"])),
)
COMMANDS = st.sampled_from([["evaluate"], ["sample", "--num", "4"], ["interpolate"],
                            ["export", "--formats", "tflite", "--quantize", "none",
                             "--batch-sizes", "4"], ["reconstruct"], ["train", "--resume"]])


def _run_property(trained_run, damage, command, data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(trained_run, run_dir)
    name, how = damage
    path = run_dir / name
    if how == "delete":
        path.unlink(missing_ok=True)
    elif how == "truncate" and path.exists():
        content = path.read_bytes()
        path.write_bytes(content[:data.draw(st.integers(0, max(0, len(content) - 1)))])
    elif how == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=64)))
    else:
        path.write_text(json.dumps(data.draw(st.dictionaries(KEYS, JSON_VALUES, max_size=4)
                                             | JSON_VALUES), allow_nan=True))
    argv = command[:1] + (["--resume"] if command[1:] == ["--resume"] else []) + \
        [str(run_dir)] + [a for a in command[1:] if a != "--resume"]
    check_property(argv)


@FAST
@given(damage=DAMAGE, command=COMMANDS, data=st.data())
def test_fuzz_damaged_runs(trained, damage, command, data, tmp_path_factory):
    _run_property(trained, damage, command, data, tmp_path_factory)


@pytest.mark.slow
@settings(LONG, max_examples=150)
@given(damage=DAMAGE, command=COMMANDS, data=st.data())
def test_fuzz_damaged_runs_long(trained, damage, command, data, tmp_path_factory):
    _run_property(trained, damage, command, data, tmp_path_factory)


# === every option of the commands that use a run ===
def _run_options():
    """`[(command, option)]` of every option of every command but `train`
    (whose options the generators above make), read from the parser itself
    (a new option joins the fuzzing), except those that name a place to
    write (`--out`) or load code from (`--web-runtime`, tested in test_web)."""
    from keras_vae.cli.parser import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    return [(name, option) for name, sub in commands.items() if name != "train"
            for action in sub._actions for option in action.option_strings
            if option.startswith("--") and option not in ("--help", "--out", "--web-runtime")]


RUN_OPTIONS = _run_options()


def _run_option_property(trained_run, case, value, tmp_path_factory):
    (command, option), run_dir = case, tmp_path_factory.mktemp("option") / "run"
    shutil.copytree(trained_run, run_dir)
    source = f"npz:{os.path.join(os.path.dirname(trained_run), 'data.npz')}"
    # Work over a few seconds is refused by its estimate, not waited for.
    limit = [] if option == "--max-minutes" or command not in (
        "evaluate", "sample", "reconstruct", "interpolate", "latent-map", "fit-detector",
        "detect") else [
        "--max-minutes", "0.2"]
    extra = ["--out", str(run_dir / "out"), "--formats", "tflite", "--quantize", "none"] \
        if command == "export" and option not in ("--formats", "--quantize") else []
    place = {"convert": [source, str(run_dir.parent / "shards")],
             "detect": [str(run_dir), source]}.get(command, [str(run_dir)])
    # `web` serves until Ctrl-C: here the server returns at once once it is up.
    with mock.patch("http.server.ThreadingHTTPServer.serve_forever", lambda self: None):
        check_property([command, *place, option, value, *limit, *extra],
                       leaves_no=[str(run_dir.parent / "shards" / "dataset.json")])


def test_every_option_of_the_run_commands_is_fuzzed():
    assert ("evaluate", "--max-memory") in RUN_OPTIONS
    assert ("interpolate", "--steps") in RUN_OPTIONS
    assert ("convert", "--shard-size") in RUN_OPTIONS and ("web", "--port") in RUN_OPTIONS
    assert ("detect", "--split") in RUN_OPTIONS
    assert not [case for case in RUN_OPTIONS if case[1] == "--out"]


@FAST
@given(case=st.sampled_from(RUN_OPTIONS), value=VALUES)
def test_fuzz_run_command_options(trained, case, value, tmp_path_factory):
    _run_option_property(trained, case, value, tmp_path_factory)


@pytest.mark.slow
@settings(LONG, max_examples=200)
@given(case=st.sampled_from(RUN_OPTIONS), value=VALUES)
def test_fuzz_run_command_options_long(trained, case, value, tmp_path_factory):
    _run_option_property(trained, case, value, tmp_path_factory)


# === tables: CSV files with odd cells, headers, sizes and label columns ===
CELLS = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(repr),
                  st.sampled_from(["", "nan", "inf", "-inf", "x", "1e400", "True", '"1,2"']),
                  st.text(alphabet=string.printable.replace("\n", ""), max_size=4))
TABLES = st.tuples(st.integers(0, 4), st.integers(0, 12), st.data())


def _table_property(shape, tmp_path_factory):
    columns, rows, data_ = shape
    folder = tmp_path_factory.mktemp("table")
    header = data_.draw(st.lists(st.sampled_from(["a", "b", "c", "a", "", "label"]),
                                 min_size=columns, max_size=columns))
    lines = [",".join(header)] + [",".join(data_.draw(st.lists(CELLS, min_size=columns,
                                                               max_size=columns)))
                                  for _ in range(rows)]
    path = folder / "t.csv"
    path.write_text("\n".join(lines) + ("\n" if data_.draw(st.booleans()) else ""))
    label = data_.draw(st.sampled_from([[], ["--label-column", "label"],
                                        ["--label-column", "zz"]]))
    run_dir = str(folder / "run")
    check_property(["train", *_TINY, "--dataset", f"csv:{path}", "--likelihood",
                    "gaussian_learned_scale", "--binarize", "none", *label,
                    "--run-dir", run_dir], leaves_no=[run_dir])
    check_property(["convert", f"csv:{path}", str(folder / "shards")], codes=(2,),
                   leaves_no=[str(folder / "shards" / "dataset.json")])


@FAST
@given(shape=TABLES)
def test_fuzz_tables(shape, tmp_path_factory):
    _table_property(shape, tmp_path_factory)


@pytest.mark.slow
@settings(LONG, max_examples=150)
@given(shape=TABLES)
def test_fuzz_tables_long(shape, tmp_path_factory):
    _table_property(shape, tmp_path_factory)


# === export/edge_score.py: a table's CSV file, read without TensorFlow ===
def _edge_score_module():
    """export/edge_score.py, imported by path (its folder first on the path,
    as when it runs as a script)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "export")
    with mock.patch.object(sys, "path", [folder, *sys.path]):
        spec = importlib.util.spec_from_file_location("edge_score_fuzzed",
                                                      os.path.join(folder, "edge_score.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


EDGE_SCORE = _edge_score_module()
#: Cells without the CSV's own syntax (commas, quotes, line ends), so that
#: the expected rows below come from splitting lines, not from the csv module.
EDGE_CELLS = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(repr),
    st.sampled_from(["", "nan", "inf", "-inf", "x", "1e400", "1e39", "-3.4e38", "True",
                     " 1 ", "\ufeff1", "1" * 140_000]),
    st.text(alphabet=string.printable.translate({ord(c): None for c in ',"\r\n'}),
            max_size=4))
EDGE_FILES = st.fixed_dictionaries({
    "bom": st.booleans(),
    "header": st.lists(st.sampled_from(["a", "b", "c", "a", "", "label"]), max_size=4),
    "rows": st.lists(st.lists(EDGE_CELLS, max_size=5), max_size=6),
    "columns": st.sampled_from([None, ["a", "b"], ["b"], ["label", "a"]]),
    "junk": st.one_of(st.none(), st.binary(max_size=40)),
})


def _edge_csv_expected(header, rows, columns):
    """What reading the file must give: `(array, None)` or `(None, message)`,
    worked out from the lines as written."""
    if not header:
        return None, "is empty"
    wanted = header if columns is None else columns
    if any(c not in header for c in wanted):
        return None, "(missing:"
    expected = []
    for number, cells in enumerate(rows, start=2):
        if not cells:  # a blank line
            continue
        for column in wanted:
            i = header.index(column)
            try:
                value = float(cells[i]) if i < len(cells) else math.nan
            except ValueError:
                value = math.nan
            if not abs(value) <= float(np.finfo(np.float32).max):
                return None, f"line {number}, column {column!r}: expected a finite number"
        expected.append([float(cells[header.index(column)]) for column in wanted])
    if not expected:
        return None, "has a header and no rows"
    return np.asarray(expected, "float32"), None


def _edge_csv_property(case, tmp_path_factory):
    path = tmp_path_factory.mktemp("edge") / "rows.csv"
    header = [] if case["header"] == [""] else case["header"]  # one empty name: a blank line
    rows = [[] if cells == [""] else cells for cells in case["rows"]]
    lines = [",".join(header)] + [",".join(cells) for cells in rows]
    text = ("\ufeff" if case["bom"] else "") + "\n".join(lines) + "\n"
    path.write_bytes(case["junk"] if case["junk"] is not None else text.encode())
    try:
        result, message = EDGE_SCORE._csv_rows(str(path), case["columns"]), None
    except Exception as error:  # noqa: BLE001 - the property: only ValueError, named
        assert type(error) is ValueError, (case, repr(error))
        message = str(error)
        # The file, and what was expected ("expected ...", "the model needs ...").
        assert message.startswith(str(path)), message
        assert "expected" in message or "the model needs" in message, message
        result = None
    if case["junk"] is not None or any(len(c) > 131072 for c in header + sum(rows, [])):
        if result is not None:  # junk that happens to be a table: finite float32 rows
            assert result.dtype == np.float32 and np.all(np.isfinite(result))
        return
    expected, expected_message = _edge_csv_expected(header, rows, case["columns"])
    if expected_message is None:
        assert message is None, (case, message)
        np.testing.assert_array_equal(result, expected)
    else:
        assert message is not None and expected_message in message, (case, message)


@FAST
@given(case=EDGE_FILES)
def test_fuzz_edge_score_csv_files(case, tmp_path_factory):
    _edge_csv_property(case, tmp_path_factory)


@pytest.mark.slow
@LONG
@given(case=EDGE_FILES)
def test_fuzz_edge_score_csv_files_long(case, tmp_path_factory):
    _edge_csv_property(case, tmp_path_factory)
