"""`python -m rnnkit`: train configurations headless and manage the run store.

    python -m rnnkit train --preset seed --epochs 1 [--set model.cell=lstm ...] [--cluster]
    python -m rnnkit runs
    python -m rnnkit show RUN_ID
    python -m rnnkit delete RUN_ID

RUN_ID is a run id or any unique prefix of 4 or more of its characters (the app shows 8).
`train --cluster` trains on the Ray cluster at ADDRESS (default `RNNKIT_RAY_ADDRESS`) instead of
in this process, with the same progress bar; the run store must be a path the nodes share.

Exit codes: 0 done, 1 the data or a run could not be used (no such run, a damaged run, a
store that cannot be written, a cluster that cannot be reached), 2 a bad argument or setting
(an ambiguous or malformed run id, an `RNNKIT_*` variable out of range), 130 interrupted by
Ctrl+C and 143 by SIGTERM (the run resumes from its last finished epoch when asked again).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from rnnkit.cluster import ClusterError
from rnnkit.config import PRESETS, TrainConfig, preset
from rnnkit.data import ImdbData, load_imdb
from rnnkit.runs import Run, RunError, RunStore
from rnnkit.settings import (
    RAY_ADDRESS_VARIABLE,
    SettingsError,
    check_environment,
    ray_address,
    ray_address_problem,
    ray_job_cpus,
    set_training_variables,
)
from rnnkit.sources import DataError
from rnnkit.training import CancelToken, ProgressEvent, TrainingCancelled, train

BAR_WIDTH = 30
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """A one-line progress bar per epoch on a terminal stream, with metrics and ETA."""

    def __init__(self, stream: TextIO | None = None, redraw_seconds: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.redraw_seconds = redraw_seconds
        self.last_drawn = 0.0
        self.events = 0

    def __call__(self, event: ProgressEvent) -> None:
        self.events += 1
        if event.kind == "start":
            self.stream.write(
                f"run {event.run_id}: {event.epochs} epochs of {event.batches} batches\n"
            )
        elif event.kind == "batch":
            now = time.monotonic()
            if now - self.last_drawn >= self.redraw_seconds or event.batch == event.batches:
                self.last_drawn = now
                self.stream.write("\r" + self._line(event))
        elif event.kind == "epoch":
            metrics = "  ".join(
                f"{name} {event.logs[name]:.4f}" for name in METRICS if name in event.logs
            )
            self.stream.write(f"\r{self._line(event)}\n  epoch {event.epoch}: {metrics}\n")
        elif event.kind == "validate":
            self.stream.write(f"\r{self._line(event)} validating")
        elif event.kind in ("evaluate", "save"):
            self.stream.write(f"{event.phase}\n")
        elif event.kind == "end":
            accuracy = event.logs.get("test_accuracy")
            self.stream.write(f"test accuracy {accuracy:.4f}, {_duration(event.elapsed)}\n")
        self.stream.flush()

    @staticmethod
    def _line(event: ProgressEvent) -> str:
        filled = round(BAR_WIDTH * event.batch / max(1, event.batches))
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        loss = event.logs.get("loss")
        accuracy = event.logs.get("accuracy")
        metrics = f" loss {loss:.4f} acc {accuracy:.4f}" if loss is not None else ""
        return (
            f"epoch {event.epoch}/{event.epochs} [{bar}] {event.batch}/{event.batches}"
            f"{metrics} ETA {_duration(event.eta)}"
        )


def _parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--set takes key=value (e.g. model.cell=lstm), not {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _config_from(arguments: argparse.Namespace) -> TrainConfig:
    overrides = _parse_sets(arguments.set)
    if arguments.epochs is not None:
        overrides["training.epochs"] = arguments.epochs  # read like --set training.epochs=
    return preset(arguments.preset).with_overrides(overrides)


def _store(arguments: argparse.Namespace) -> RunStore:
    return RunStore(arguments.runs_dir)


def command_train(arguments: argparse.Namespace) -> int:
    config = _config_from(arguments)
    data = load_imdb(num_words=config.data.num_words, path=arguments.data)
    store = _store(arguments)
    run_id = config.run_id(data.fingerprint)
    print(f"{config.summary()}\nrun id {run_id}", file=sys.stderr)
    stored = store.summary(run_id)
    already_trained = stored.status == "complete"
    if already_trained:
        print("already trained: returning the stored run, no training", file=sys.stderr)
    elif stored.status == "damaged":
        print(
            f"the stored run is damaged ({stored.error}): it is trained again from scratch",
            file=sys.stderr,
        )
    started = time.perf_counter()
    bar = ProgressBar()
    if arguments.cluster is not None and not already_trained:
        run = _train_on_cluster(config, data, store, bar, _cluster_address(arguments.cluster))
    else:
        run = train(config, data, store, on_progress=bar, started_at=arguments.started_at)
    if not bar.events and not already_trained:
        print("trained by another process meanwhile: its stored run is returned", file=sys.stderr)
    summary = run.summary
    print(
        f"run {run.run_id} ready in {_duration(time.perf_counter() - started)}: best "
        f"validation accuracy {summary.get('best_val_accuracy') or float('nan'):.4f} "
        f"(epoch {summary.get('best_epoch')}), test accuracy "
        f"{summary.get('test_accuracy') or float('nan'):.4f}"
    )
    return 0


def _cluster_address(given: str) -> str:
    """The address `--cluster` names, or `RNNKIT_RAY_ADDRESS`'s; ValueError if neither."""
    address = given.strip() or ray_address()
    if not address:
        raise ValueError(
            f"--cluster needs the cluster's address: --cluster ADDRESS, or set "
            f"{RAY_ADDRESS_VARIABLE}"
        )
    problem = ray_address_problem(address)
    if problem:
        raise ValueError(problem.replace(RAY_ADDRESS_VARIABLE, "--cluster", 1))
    return address


def _train_on_cluster(
    config: TrainConfig, data: ImdbData, store: RunStore, bar: ProgressBar, address: str
) -> Run:
    """Train `config` on the cluster at `address`; Ctrl+C or SIGTERM stops the job there after
    its batch in progress (resumable) and raises as for local training."""
    from rnnkit.cluster import connect, train_on_cluster
    from rnnkit.jobs import training_order

    print(f"training on the Ray cluster at {address}", file=sys.stderr)
    connect(address)  # before the handlers below: connecting sets Ray's own
    cancel = CancelToken()
    received: list[int] = []

    def stop(number: int, frame: object) -> None:
        received.append(number)
        cancel.cancel()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        previous = {
            number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)
        }
    try:
        train_on_cluster(
            training_order(config, data, store),
            address,
            cpus=ray_job_cpus(),
            on_progress=bar,
            cancel=cancel,
        )
    except TrainingCancelled:
        if received and received[0] == signal.SIGTERM:
            raise _Terminated from None
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return store.load(config.run_id(data.fingerprint))


def _format(value: object, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def command_runs(arguments: argparse.Namespace) -> int:
    runs = _store(arguments).list_runs()
    if not runs:
        print(f"no runs in {_store(arguments).root}")
        return 0
    header = f"{'run id':16}  {'status':10}  {'epochs':>6}  {'best val':>8}  {'test':>6}  "
    print(header + f"{'created':19}  config")
    for run in runs:
        try:
            description = TrainConfig.from_dict(run.config).summary() if run.config else ""
        except ValueError:
            description = "(config unreadable)"
        if run.error:
            description = f"{description}  [{run.error}]".strip()
        print(
            f"{run.run_id:16}  {run.status:10}  {run.epochs_done:>6}  "
            f"{_format(run.best_val_accuracy):>8}  {_format(run.test_accuracy):>6}  "
            f"{(run.created or '-')[:19]:19}  {description}"
        )
    return 0


def command_show(arguments: argparse.Namespace) -> int:
    store = _store(arguments)
    run = store.load(store.resolve(arguments.run_id))
    print(f"run {run.run_id}: {TrainConfig.from_dict(run.config).summary()}")
    print(json.dumps({"summary": run.summary, "metrics": run.metrics}, indent=2))
    print(f"{'epoch':>5}  {'loss':>7}  {'acc':>7}  {'val_loss':>8}  {'val_acc':>7}  seconds")
    for record in run.history:
        print(
            f"{record['epoch']:>5}  {record.get('loss', 0):7.4f}  {record.get('accuracy', 0):7.4f}"
            f"  {record.get('val_loss', 0):8.4f}  {record.get('val_accuracy', 0):7.4f}  "
            f"{record.get('seconds', 0):7.1f}"
        )
    return 0


def command_delete(arguments: argparse.Namespace) -> int:
    store = _store(arguments)
    run_id = store.resolve(arguments.run_id)
    if store.delete(run_id):
        print(f"deleted run {run_id}")
        return 0
    print(f"error: no run {run_id} in {store.root} (deleted meanwhile?)", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rnnkit", description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", default=None, help="the run store (default: RNNKIT_RUNS_DIR)")
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train a configuration (or reuse its run)")
    train_parser.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    train_parser.add_argument("--epochs", default=None, help="override the epochs")
    train_parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set model.cell=lstm --set training.batch_size=64",
    )
    train_parser.add_argument("--data", default=None, help="aclImdb archive or folder")
    train_parser.add_argument(
        "--cluster",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help=f"train on a Ray cluster: auto, ray://HOST:PORT or HOST:PORT (default: "
        f"{RAY_ADDRESS_VARIABLE}); the run store and the data must be paths every node shares",
    )
    train_parser.set_defaults(handler=command_train)

    commands.add_parser("runs", help="list the runs").set_defaults(handler=command_runs)
    for name, handler, text in (
        ("show", command_show, "show a run's results"),
        ("delete", command_delete, "delete a run"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("run_id", help="a run id, or its first 4 or more characters")
        sub.set_defaults(handler=handler)
    return parser


class _Terminated(Exception):
    """SIGTERM asked the command to stop."""


def _on_terminate(number: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    started_at = time.time()  # a run's start counts from the command, TensorFlow's load included
    set_training_variables()
    arguments = build_parser().parse_args(argv)
    arguments.started_at = started_at
    try:
        check_environment()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # SIGTERM ends the command as Ctrl+C does, with its message (training defers both to the
    # end of the batch in progress, rnnkit.training).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_terminate) if in_main_thread else None
    interrupted = "\ninterrupted: the run resumes from its last finished epoch when asked again"
    try:
        return arguments.handler(arguments)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (DataError, RunError, ClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, TrainingCancelled):
        print(interrupted, file=sys.stderr)
        return 128 + signal.SIGINT
    except _Terminated:
        print(interrupted, file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
