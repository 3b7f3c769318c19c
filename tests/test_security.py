"""Security: run ids from URLs, forms and the command line never reach a path outside the run
store; models load only from the store and only in Keras' safe mode; nothing is uploaded."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest

from rnnkit import RunStore, cli, preset
from rnnkit.runs import MODEL_FILE, RunError
from tests.helpers import TinyRuns, app_on_a_copy, metrics, open_page, texts, train_tiny_runs

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "views").glob("*.py"))

# What a URL, a form or a command line may hand over as a run id.
BAD_RUN_IDS = [
    "../victim",
    "../../victim/precious.txt",
    "../../etc",
    "/etc/passwd",
    "/etc",
    "0123456789abcdef/../../victim",
    "0123456789abcdef/x",
    "..",
    ".",
    "",
    "0123456789ABCDEF",  # upper case: on some file systems the same folder as another run's
    "0123456789abcdef\n",
    "0123456789abcde",
    "0123456789abcdef0",
    "x" * 5000,
    "%2e%2e%2fvictim",
    "\x00123456789abcdef",
    None,
    123,
]


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file beside the run store that nothing may read, change or delete."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


def store_calls(store: RunStore, run_id: object) -> dict:
    """Every RunStore method that takes a run id, called with `run_id`."""
    return {
        "folder": lambda: store.folder(run_id),
        "model_path": lambda: store.model_path(run_id),
        "backup_dir": lambda: store.backup_dir(run_id),
        "lock": lambda: store.lock(run_id),
        "create": lambda: store.create(run_id, {"units": 8}),
        "write_json": lambda: store.write_json(run_id, "history.json", []),
        "write_array": lambda: store.write_array(run_id, "predictions.npy", np.zeros(2)),
        "mark_complete": lambda: store.mark_complete(run_id, {}),
        "mark_failed": lambda: store.mark_failed(run_id, "boom"),
        "discard_results": lambda: store.discard_results(run_id),
        "delete": lambda: store.delete(run_id),
        "read_json": lambda: store.read_json(run_id, "config.json"),
        "read_array": lambda: store.read_array(run_id, "predictions.npy"),
        "write_derived": lambda: store.write_derived(run_id, "profile.json", {}),
        "read_derived": lambda: store.read_derived(run_id, "profile.json"),
        "history_epochs": lambda: store.history_epochs(run_id),
        "status": lambda: store.status(run_id),
        "summary": lambda: store.summary(run_id),
        "load": lambda: store.load(run_id),
    }


@pytest.mark.parametrize("run_id", BAD_RUN_IDS, ids=repr)
def test_every_store_method_refuses_a_run_id_that_is_not_one(tmp_path, victim, run_id):
    store = RunStore(tmp_path / "store")
    for name, call in store_calls(store, run_id).items():
        with pytest.raises(ValueError, match="is not a valid run id"):
            call()
        assert (victim / "precious.txt").read_text() == "keep me", name
    # Nothing was created: not the store, not a folder named by the id.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["victim"]


@pytest.mark.parametrize("name", ["../victim/precious.txt", "/etc/passwd", "a/b", ".hidden"])
def test_file_names_inside_a_run_are_plain_names(tmp_path, victim, name):
    store = RunStore(tmp_path / "store")
    run_id = "0123456789abcdef"
    store.create(run_id, preset("seed").to_dict())
    for call in (
        lambda: store.read_json(run_id, name),
        lambda: store.write_json(run_id, name, {}),
        lambda: store.read_array(run_id, name),
        lambda: store.write_array(run_id, name, np.zeros(2)),
    ):
        with pytest.raises(ValueError, match="is not a valid run file name"):
            call()
    assert (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("command", ["show", "delete"])
@pytest.mark.parametrize("run_id", ["../victim", "../../etc", "/etc", "0123456789abcdef/.."])
def test_the_command_line_refuses_paths_as_run_ids(tmp_path, victim, monkeypatch, command, run_id):
    monkeypatch.setenv("RNNKIT_RUNS_DIR", str(tmp_path / "store"))
    assert cli.main([command, run_id]) == 2
    assert (victim / "precious.txt").read_text() == "keep me"


# --- run ids in the app's URLs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TinyRuns:
    return train_tiny_runs(tmp_path_factory.mktemp("security"))


@pytest.fixture
def runs(trained, tmp_path, monkeypatch) -> TinyRuns:
    """The app on the tiny corpus and a copy of the two runs, with a victim beside the store."""
    with app_on_a_copy(trained, tmp_path / "runs", monkeypatch) as copy:
        yield copy


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


URL_RUN_IDS = [value for value in BAD_RUN_IDS if isinstance(value, str) and value] + [
    "fedcba9876543210",  # a run id, but not a run of this store
]


def test_a_bad_run_id_in_the_predictions_url_is_refused_with_a_note(runs, victim):
    before = tree_hashes(runs.runs)
    for value in URL_RUN_IDS:
        if "\x00" in value:
            continue  # a URL cannot carry a NUL
        app = open_page("views/predictions.py", predict_run=value)
        (picker,) = [box for box in app.selectbox if box.key == "predict_run"]
        assert picker.value == runs.run_id, repr(value)  # the newest run instead
        assert "The link names a run that is not a complete run of these reviews here" in texts(app)
        if len(value) >= 8:
            assert value not in texts(app)  # a link's text is not echoed
        assert "Probability of positive" in metrics(app)
    assert tree_hashes(runs.runs) == before  # nothing written, nothing removed
    assert (victim / "precious.txt").read_text() == "keep me"
    good = open_page("views/predictions.py", predict_run=runs.other_run_id)
    assert "The link names a run" not in texts(good)


def test_bad_run_ids_in_the_curves_url_are_left_out_with_a_note(runs, victim):
    before = tree_hashes(runs.runs)
    bad = [value for value in URL_RUN_IDS if "\x00" not in value]
    app = open_page("views/curves.py", curves_runs=[*bad, runs.other_run_id])
    assert app.multiselect(key="curves_runs").value == [runs.other_run_id]
    assert f"The link names {len(bad)} run(s) not in this store" in texts(app)
    # Only stored runs get a delete button; none names a path.
    deletes = [button.key for button in app.button if button.key.startswith("curves_delete_")]
    assert deletes == [f"curves_delete_{runs.other_run_id}"]
    assert tree_hashes(runs.runs) == before
    assert (victim / "precious.txt").read_text() == "keep me"


# --- loading models ------------------------------------------------------------------------------


def test_a_run_model_is_loaded_in_safe_mode_from_its_own_folder(runs, monkeypatch):
    import keras

    calls = []
    monkeypatch.setattr(
        keras.saving, "load_model", lambda path, **options: calls.append((path, options))
    )
    run = RunStore().load(runs.run_id)
    run.model()
    assert calls == [(RunStore().folder(runs.run_id) / MODEL_FILE, {"safe_mode": True})]


def lambda_model(path: Path, marker: Path) -> None:
    """A model whose Lambda layer writes `marker` whenever its Python code runs."""
    import keras

    # A Python lambda with the marker's path in its own code: Keras saves its bytecode, which
    # an unsafe load would run.
    mark = eval(f"lambda tensor: (open({str(marker)!r}, 'w').write('ran'), tensor)[1]")
    inputs = keras.Input((16,))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Lambda(mark)(inputs))
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model ran it once, here


def test_a_model_with_a_lambda_layer_is_refused_and_its_code_never_runs(runs, tmp_path):
    marker = tmp_path / "ran.txt"
    model_path = RunStore().model_path(runs.run_id)
    lambda_model(model_path, marker)
    assert RunStore().status(runs.run_id) == "complete"  # a whole .keras archive
    with pytest.raises(RunError, match=f"The model of run {runs.run_id}.*Lambda"):
        RunStore().load(runs.run_id).model()
    app = open_page("views/predictions.py", predict_run=runs.run_id)
    (error,) = [alert.value for alert in app.error]
    assert f"The model of run {runs.run_id}" in error and "cannot be loaded" in error
    assert not marker.exists()


# --- no uploads ----------------------------------------------------------------------------------


def test_no_page_offers_a_file_upload(runs):
    assert PAGES == [
        "views/curves.py",
        "views/home.py",
        "views/inside.py",
        "views/lengths.py",
        "views/predictions.py",
        "views/reviews.py",
        "views/train.py",
        "views/vocabulary.py",
    ]
    for page in PAGES:
        app = open_page(page, curves_runs=[runs.run_id])
        assert app.title, page  # the page ran to its content, its widgets all drawn
        assert not app.get("file_uploader"), page
    sources = [*ROOT.glob("views/*.py"), *ROOT.glob("rnnkit/*.py"), ROOT / "app.py"]
    assert not [path for path in sources if "file_uploader" in path.read_text()]


def test_the_server_accepts_no_large_upload():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] <= 2  # MB
    assert config["server"]["enableXsrfProtection"] is True
