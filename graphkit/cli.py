"""The ``graphkit`` command line: ``graphkit fit``, ``graphkit tune``, ``graphkit bench``,
``graphkit datasets list|download|verify``, ``graphkit models list``.

Only click and :mod:`graphkit.exceptions` are imported here at start-up; torch and the rest of
graphkit are imported inside the commands, so ``graphkit --help`` (and ``graphkit CMD --help``)
answers without loading them."""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from .exceptions import ConfigError, GraphkitError


def parse_assignments(pairs: Sequence[str]) -> Dict[str, Any]:
    """Turn ``["lr=1e-3", "ks=[10,20]", "optimizer=adam"]`` into a dict of Python values.

    Args:
        pairs: ``key=value`` strings (``--set`` options). Values are read as Python
            literals (numbers, lists, booleans, None); anything else stays a string.
            ``-`` in keys becomes ``_``.
    """
    out: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        text = raw.strip()
        lowered = text.lower()
        if lowered in ("true", "false"):
            value: Any = lowered == "true"
        elif lowered in ("none", "null"):
            value = None
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
        out[key] = value
    return out


class _Group(click.Group):
    """Turn every error into one clear line and exit code 2 instead of a traceback.

    graphkit's own errors (:class:`~graphkit.exceptions.GraphkitError`) say what is wrong with the
    input; an operating-system error names the file; anything else is reported as unexpected (a
    bug to report).  ``graphkit --debug ...`` (or ``GRAPHKIT_DEBUG=1``) also prints the traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except GraphkitError as exc:
            _fail(ctx, f"error: {exc}", exc)
        except MemoryError as exc:
            _fail(ctx, "error: out of memory (a smaller batch_size / eval_memory_mb, or a machine with more "
                       "memory)", exc)
        except OSError as exc:
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(ctx, f"error: {exc.strerror or exc}{where}", exc)
        except Exception as exc:  # noqa: BLE001 - the CLI's promise: one line, never a traceback
            _fail(ctx, f"error: unexpected {type(exc).__name__}: {exc} (please report it; "
                       "graphkit --debug ... shows the traceback)", exc)


def _fail(ctx: click.Context, message: str, exc: BaseException) -> None:
    import os
    import traceback

    if (ctx.obj or {}).get("debug") or os.environ.get("GRAPHKIT_DEBUG", "") not in ("", "0"):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    click.echo(" ".join(message.split("\n")), err=True)
    sys.exit(2)


def _check_text(flag: str, value: Optional[str]) -> None:
    """Refuse a NUL byte in a name or path (the OS would, with a raw ``ValueError``)."""
    if value is not None and "\x00" in value:
        raise ConfigError(f"{flag} {value!r} contains a NUL byte (\\x00); no file or dataset name can")


@click.group(cls=_Group)
@click.version_option(package_name="graphkit")
@click.option("--debug", is_flag=True, help="On an error, also print the Python traceback.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """graphkit: graph learning and recommendation on PyTorch."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# ----------------------------------------------------------------------------- graphkit fit
#: Keys a ``graphkit fit --config`` file accepts, with the type each value must have.
_FIT_FILE_KEYS: Dict[str, str] = {
    "model": "str", "dataset": "str", "data_dir": "str", "seed": "int", "preset": "preset",
    "no_preset": "bool", "hparams": "mapping", "set": "list", "epochs": "int", "max_time": "number",
    "device": "str", "threads": "int", "out": "str", "quiet": "bool", "resume": "bool",
}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
               "mapping": "a mapping of names to values", "list": "a list of KEY=VALUE strings",
               "preset": "paper, fast, none, true or false"}
#: Constructor arguments that ``graphkit.fit`` fills from the dataset, never from ``--from``.
_DATA_SIZED = ("num_users", "num_items", "in_channels", "num_classes")
#: Recorded training options that describe where a run executed, not what it computed.
_NOT_RERUN = ("device", "checkpoint_dir", "progress", "seed")


def _yaml_key_lines(text: str) -> Dict[str, int]:
    """1-based line of each top-level key of a YAML/JSON mapping (empty when unknown)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def _check_type(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "mapping":
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if kind == "list":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    if kind == "preset":
        return isinstance(value, bool) or value in ("paper", "fast", "none")
    raise AssertionError(kind)


def read_fit_config(path: str) -> Dict[str, Any]:
    """Read a ``graphkit fit --config`` file: a YAML (or ``.json``) mapping of fit options.

    Accepted keys: ``model``, ``dataset``, ``data_dir``, ``seed``, ``preset``, ``hparams``
    (a mapping of hyper-parameters) and the other ``graphkit fit`` options by name
    (``epochs``, ``max_time``, ``device``, ``threads``, ``no_preset``, ``set``, ``out``,
    ``quiet``, ``resume``; ``-`` and ``_`` interchangeable).  ``null`` means "not set".
    YAML is read with ``yaml.safe_load`` (no Python objects).

    Args:
        path: the file.

    Returns:
        The options, keys normalised to ``_``, ``null`` values dropped.

    Raises:
        ConfigError: one line naming the file (and the line where the YAML parser knows it):
            a missing or unreadable file, invalid YAML/JSON, not a mapping, an unknown key
            or a value of the wrong type.
    """
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else path
            what = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise ConfigError(f"{where}: not valid YAML ({what})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fit options (model:, dataset:, ...), "
                          f"got {type(data).__name__}")
    lines = _yaml_key_lines(text)
    out: Dict[str, Any] = {}
    for raw_key, value in data.items():
        where = f"{path}:{lines[str(raw_key)]}" if str(raw_key) in lines else path
        key = str(raw_key).replace("-", "_")
        if key not in _FIT_FILE_KEYS:
            raise ConfigError(f"{where}: unknown key {raw_key!r}; accepted: {', '.join(_FIT_FILE_KEYS)}")
        if value is None:
            continue
        kind = _FIT_FILE_KEYS[key]
        if not _check_type(kind, value):
            raise ConfigError(f"{where}: key {raw_key!r} must be {_TYPE_WORDS[kind]}, got {value!r}")
        out[key] = value
    return out


def _train_option_names(cls: Any) -> Optional[set]:
    """The training-option names ``graphkit.fit`` accepts for ``cls`` (None: unknown, accept all)."""
    import dataclasses

    try:
        if getattr(cls, "task", "recommendation") == "node":
            if getattr(cls, "trainer", "full") == "minibatch":
                from .training.minibatch import MiniBatchTrainConfig as config
            else:
                from .training.node import NodeTrainConfig as config
        elif getattr(cls, "task", "recommendation") == "graph":
            from .training.graph import GraphTrainConfig as config
        else:
            from .training.recommendation import RecTrainConfig as config
        return {f.name for f in dataclasses.fields(config)}
    except (ImportError, AttributeError, TypeError):
        return None


def options_from_record(path: str) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
    """The fit options that rerun the run recorded in ``path`` (``--from``).

    Model (its registered name), dataset, seed, the recorded model hyper-parameters without
    the dataset-sized ones (``num_users``, ``num_items``, ``in_channels``, ``num_classes``),
    the recorded training options without ``device``, ``checkpoint_dir``, ``progress`` and
    any this graphkit no longer accepts, a node dataset's random split, and ``preset: none``
    so the recorded values are used exactly.

    Args:
        path: a ``record.json`` or the folder holding one.

    Returns:
        ``(options, record, notes)``: the options (as in a ``--config`` file), the record,
        and one line per recorded value left out.

    Raises:
        ConfigError: a missing or invalid file, or a record without model/dataset.
        CheckpointError: a model class that is not registered.
    """
    import inspect

    from .models import available_models, get_model
    from .training.result import resolve_model_class

    p = Path(path)
    if p.is_dir():
        p = p / "record.json"
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({exc})") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{p}: expected a run record (a JSON object), got {type(record).__name__}")
    for key, kind in (("model", "str"), ("dataset", "str"), ("seed", "int"), ("hparams", "mapping")):
        if not _check_type(kind, record.get(key)):
            raise ConfigError(f"{p}: field {key!r} missing or not {_TYPE_WORDS[kind]}")
    cls = resolve_model_class(record["model"], str(p))
    name = next((n for n in available_models() if get_model(n) is cls), record["model"])
    params = inspect.signature(cls.__init__).parameters
    notes: List[str] = []
    hparams: Dict[str, Any] = {}
    for key, value in record["hparams"].items():
        if key in _DATA_SIZED:
            continue
        if key in params:
            hparams[key] = value
        else:
            notes.append(f"recorded model argument {key}={value!r} is not taken by {cls.__name__} any more; left out")
    train = record.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError(f"{p}: field 'train' must be a mapping, got {train!r}")
    accepted = _train_option_names(cls)
    for key, value in train.items():
        if key in _NOT_RERUN:
            continue
        if accepted is not None and key not in accepted:
            notes.append(f"recorded training option {key}={value!r} is not accepted any more; left out")
            continue
        hparams[key] = value
    if getattr(cls, "task", None) == "node" and record.get("split") == "random":
        hparams["split"] = "random"
        if record.get("split_seed") is not None:
            hparams["split_seed"] = record["split_seed"]
    options = {"model": name, "dataset": record["dataset"], "seed": record["seed"], "preset": "none",
               "hparams": hparams}
    return options, record, notes


def _layer_hparams(layer: Dict[str, Any]) -> Dict[str, Any]:
    """A layer's hyper-parameters: ``hparams``, then ``set``, then the dedicated options."""
    out = dict(layer.get("hparams") or {})
    sets = layer.get("set") or ()
    out.update(parse_assignments([sets] if isinstance(sets, str) else sets))
    for key, target in (("epochs", "epochs"), ("max_time", "max_time"), ("device", "device"),
                        ("threads", "num_threads")):
        if layer.get(key) is not None:
            out[target] = layer[key]
    if layer.get("quiet"):
        out["progress"] = False
    return out


def _layer_preset(layer: Dict[str, Any], where: str) -> Optional[str]:
    """A layer's preset as ``paper``/``fast``/``none`` (None: the layer does not say)."""
    preset = layer.get("preset")
    if isinstance(preset, bool):
        preset = "paper" if preset else "none"
    if layer.get("no_preset"):
        if preset not in (None, "none"):
            raise ConfigError(f"{where}: no_preset contradicts preset {preset}")
        return "none"
    return preset


@main.command("fit")
@click.argument("model", required=False)
@click.option("--dataset", "-d", default=None, help="Dataset name (gowalla, ml-1m, cora, ...) or folder path.")
@click.option("--data-dir", default=None, help="Folder with dataset files (default: $GRAPHKIT_DATA).")
@click.option("--epochs", type=int, default=None, help="Maximum number of epochs.")
@click.option("--max-time", type=float, default=None, help="Stop training after this many seconds.")
@click.option("--seed", type=int, default=None, help="Random seed of the run (default 2020).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when available).")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--no-preset", is_flag=True, help="Ignore the paper's per-dataset hyper-parameters.")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "fast", "none"]), default=None,
              help="paper: the paper's protocol (default); fast: the model's time-to-quality recipe; none.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Any hyper-parameter, repeatable.")
@click.option("--out", default=None, help="Save model, record and history to this folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from its checkpoint (checkpoint_dir, default OUT/checkpoints); "
                   "starts from scratch when there is none yet.")
@click.option("--config", "config_file", default=None, metavar="FILE",
              help="Read options from a YAML (or .json) file: model, dataset, seed, preset, data_dir, "
                   "hparams (a mapping) and any option above by name. Command-line options override it.")
@click.option("--from", "from_record", default=None, metavar="RECORD",
              help="Rerun a recorded run: RECORD is a record.json (or its folder) written by --out. Takes its "
                   "model, dataset, seed, hyper-parameters and training options, with no preset.")
def fit_cmd(model: Optional[str], dataset: Optional[str], data_dir: Optional[str], epochs: Optional[int],
            max_time: Optional[float], seed: Optional[int], device: Optional[str], threads: Optional[int],
            no_preset: bool, preset_name: Optional[str], assignments: Sequence[str], out: Optional[str],
            quiet: bool, resume: bool, config_file: Optional[str], from_record: Optional[str]) -> None:
    """Train MODEL on a dataset's standardized split and print its test metrics.

    Example: graphkit fit lightgcn --dataset gowalla --max-time 240

    Crash-safe: graphkit fit lightgcn -d gowalla --out runs/g --resume checkpoints the
    training state into runs/g/checkpoints; if the run is killed, the same command continues
    where it stopped and ends with the same result as an uninterrupted run.

    From a file: graphkit fit --config run.yaml [--seed 4 ...], with run.yaml e.g.

    \b
        model: lightgcn
        dataset: gowalla
        seed: 3
        epochs: 50
        hparams: {lr: 0.001, embedding_dim: 64}

    MODEL and --dataset may then be left out; options given on the command line
    win over the file. Unknown keys and wrongly typed values are errors.

    Rerun: graphkit fit --from runs/g/record.json repeats a saved run with its recorded
    model, dataset, seed, hyper-parameters and training options (no preset), on this
    machine's device; on CPU it gives the same metrics. A dataset given as a folder is
    recorded by its folder name: add --data-dir PARENT or --dataset PATH.
    """
    from .training import fit

    for flag, value in (("MODEL", model), ("--dataset", dataset), ("--data-dir", data_dir), ("--out", out),
                        ("--config", config_file), ("--from", from_record)):
        _check_text(flag, value)
    layers: List[Tuple[str, Dict[str, Any]]] = []
    record: Optional[Dict[str, Any]] = None
    if from_record:
        recorded, record, notes = options_from_record(from_record)
        for note in notes:
            click.echo(f"note: {note}", err=True)
        layers.append((from_record, recorded))
    if config_file:
        layers.append((config_file, read_fit_config(config_file)))
    if no_preset and preset_name not in (None, "none"):
        raise click.UsageError(f"--no-preset contradicts --preset {preset_name}")
    cli = {"model": model, "dataset": dataset, "data_dir": data_dir, "seed": seed, "preset": preset_name,
           "no_preset": no_preset, "set": list(assignments), "epochs": epochs, "max_time": max_time,
           "device": device, "threads": threads, "out": out, "quiet": quiet, "resume": resume}
    layers.append(("the command line", {k: v for k, v in cli.items() if v not in (None, False, [])}))

    opts: Dict[str, Any] = {}
    hparams: Dict[str, Any] = {}
    preset = "paper"
    for where, layer in layers:
        for key in ("model", "dataset", "data_dir", "seed", "out", "resume"):
            if key in layer:
                opts[key] = layer[key]
        hparams.update(_layer_hparams(layer))
        preset = _layer_preset(layer, where) or preset
    if not opts.get("model"):
        raise ConfigError("no MODEL given: pass it as the argument, or as 'model' in --config (or use --from)")
    if not opts.get("dataset"):
        raise ConfigError("no dataset given: pass --dataset, or 'dataset' in --config (or use --from)")
    for key, flag in (("seed", "--seed"), ("preset", "--preset"), ("data_dir", "--data-dir"), ("resume", "--resume"),
                      ("model", "MODEL"), ("dataset", "--dataset"), ("callbacks", None)):
        if key in hparams:
            hint = f"; use {flag}" if flag else ""
            raise ConfigError(f"{key} is not a hyper-parameter (--set {key}=... / hparams: {key}){hint}")
    out, resume = opts.get("out"), bool(opts.get("resume"))
    if resume and out and not hparams.get("checkpoint_dir"):
        hparams["checkpoint_dir"] = str(Path(out) / "checkpoints")
    result = fit(opts["model"], opts["dataset"], data_dir=opts.get("data_dir"),
                 preset=False if preset == "none" else preset, seed=opts.get("seed", 2020), resume=resume, **hparams)
    rec = result.record
    click.echo(f"{rec['model']} on {rec.get('dataset')} (split {rec.get('fingerprint')}, seed {rec['seed']}): "
               f"best epoch {rec['best_epoch']} of {rec['epochs_run']} ({rec['stopped_by']}), "
               f"{rec['train_seconds']:.1f}s on {rec['device']}")
    if "refit" in rec:
        click.echo(f"refit on train + validation ({rec['refit']['train_nnz']:,} interactions) for "
                   f"{rec['refit']['epochs']} epoch(s), {rec['refit']['train_seconds']:.1f}s: the test metrics are "
                   "the refitted model's")
    click.echo("test " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())))
    if record is not None and record.get("fingerprint") and rec.get("fingerprint") != record.get("fingerprint"):
        click.echo(f"warning: the dataset split differs from the recorded run's (fingerprint {rec.get('fingerprint')}, "
                   f"recorded {record.get('fingerprint')}): the metrics are not comparable", err=True)
    if out:
        click.echo(f"saved to {result.save(out)}")


@main.command("bench")
@click.option("--models", "-m", default=None, help="Comma-separated model names, e.g. lightgcn,ultragcn.")
@click.option("--datasets", "-d", "datasets_", default=None,
              help="Comma-separated dataset names or folders, e.g. gowalla,ml-1m or cora,ogbn-arxiv.")
@click.option("--seeds", default="1", show_default=True, help="A count (3 = seeds 0,1,2) or a list (0,5,7).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Hyper-parameter override for every run; MODEL.KEY=VALUE for one model. Repeatable.")
@click.option("--out", default="runs/bench", show_default=True,
              help="Output folder: runs/*.json, results.csv, leaderboard.md, plots/.")
@click.option("--data-dir", default=None, help="Folder with dataset files (default: $GRAPHKIT_DATA).")
@click.option("--epochs", type=int, default=None, help="Cap the number of epochs of every run.")
@click.option("--max-time", type=float, default=None, help="Training-time budget per run, in seconds.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when available).")
@click.option("--threads", type=int, default=None, help="torch CPU threads per run.")
@click.option("--timeout", type=float, default=None, help="Kill a run after this many seconds (recorded as failed).")
@click.option("--compare", type=click.Choice(["paper"]), default=None,
              help="Print the published numbers next to ours, with the difference.")
@click.option("--no-isolate", is_flag=True, help="Run every cell in this process instead of its own subprocess.")
@click.option("--skip-failed", is_flag=True, help="Do not re-run cells recorded as failed.")
@click.option("--no-plots", is_flag=True, help="Do not write plots.")
@click.option("--report-only", is_flag=True, help="Only rebuild the tables and plots from the records in --out.")
def bench_cmd(models: Optional[str], datasets_: Optional[str], seeds: str, assignments: Sequence[str], out: str,
              data_dir: Optional[str], epochs: Optional[int], max_time: Optional[float], device: Optional[str],
              threads: Optional[int], timeout: Optional[float], compare: Optional[str], no_isolate: bool,
              skip_failed: bool, no_plots: bool, report_only: bool) -> None:
    """Run every (model, dataset, seed) with the presets on the standardized splits.

    Examples:

      graphkit bench --models lightgcn,ultragcn --datasets gowalla,ml-1m --seeds 3

      graphkit bench --models dagnn,gcn --datasets cora,citeseer --seeds 5 --compare paper

    One JSON record per run goes to OUT/runs/ (metrics, split fingerprint, seed,
    hyper-parameters, package versions, device, wall time, peak memory, history).
    Re-running the same command skips finished runs; failed runs are recorded with their
    traceback and re-run next time. OUT gets results.csv, leaderboard.md and plots/.
    """
    from . import bench

    if report_only:
        records = bench.load_records(out)
        if not records:
            raise ConfigError(f"no run records in {Path(out) / 'runs'}")
        bench.report(records, out, plots=not no_plots, compare=compare, echo=click.echo)
        return
    if not models or not datasets_:
        from .datasets import available
        from .models import available_models

        raise ConfigError("--models and --datasets are required. Models: " + ", ".join(available_models())
                          + ". Datasets: " + ", ".join(d.name for d in available() if not d.name.startswith("ogbg")))
    fit_options: Dict[str, Any] = {}
    for key, value in (("epochs", epochs), ("max_time", max_time), ("device", device), ("num_threads", threads)):
        if value is not None:
            fit_options[key] = value
    res = bench.run_bench(models, datasets_, seeds, out, overrides=parse_assignments(assignments), data_dir=data_dir,
                          fit_options=fit_options, isolate=not no_isolate, timeout=timeout,
                          rerun_failed=not skip_failed, plots=not no_plots, compare=compare, echo=click.echo)
    if any(r.get("status") != "ok" for r in res["records"]):
        sys.exit(1)


@main.command("tune")
@click.argument("model")
@click.option("--dataset", "-d", required=True, help="Dataset name or folder path.")
@click.option("--data-dir", default=None, help="Folder with dataset files (default: $GRAPHKIT_DATA).")
@click.option("--max-time", type=float, default=None, help="Budget of the whole search, in seconds.")
@click.option("--n-trials", type=int, default=None, help="Stop after this many trials in total.")
@click.option("--storage", default=None,
              help="SQLite file (or Optuna URL) holding the study: a killed search resumes from it.")
@click.option("--study-name", default=None, help="Study name in --storage (default MODEL-DATASET).")
@click.option("--metric", default="recall@20", show_default=True, help="Validation metric to maximise.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the TPE sampler.")
@click.option("--trial-seed", type=int, default=2020, show_default=True,
              help="Training seed of every trial (keep it apart from the seeds you report).")
@click.option("--threads", type=int, default=None, help="torch CPU threads per trial.")
@click.option("--trial-max-time", type=float, default=None, help="Cap on one trial's training time, seconds.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="A hyper-parameter fixed for every trial, repeatable.")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "fast", "none"]), default="none",
              show_default=True, help="Start every trial from this preset (none: the model's defaults).")
@click.option("--no-start", "no_start", is_flag=True, default=False,
              help="Do not make the preset's (or defaults') values of the searched hyper-parameters the first trial.")
@click.option("--out", default=None, help="Save the best trial's model, record and history to this folder.")
def tune_cmd(model: str, dataset: str, data_dir: Optional[str], max_time: Optional[float], n_trials: Optional[int],
             storage: Optional[str], study_name: Optional[str], metric: str, seed: int, trial_seed: int,
             threads: Optional[int], trial_max_time: Optional[float], assignments: Sequence[str],
             preset_name: str, no_start: bool, out: Optional[str]) -> None:
    """Search MODEL's hyper-parameters on a dataset's validation split (Optuna TPE + pruning).

    Example: graphkit tune lightgcn --dataset ml-1m --max-time 1200 --storage runs/tune.db

    The best trial's model is evaluated on the test split once, at the end.
    """
    from .tuning import tune

    fixed = parse_assignments(assignments)
    own = {"max_time": "--max-time", "n_trials": "--n-trials", "storage": "--storage", "study_name": "--study-name",
           "metric": "--metric", "seed": "--seed (sampler) or --trial-seed (training)", "trial_seed": "--trial-seed",
           "trial_max_time": "--trial-max-time", "preset": "--preset", "data_dir": "--data-dir", "space": None,
           "warmup_evaluations": None, "model": None, "dataset": "--dataset", "start_from_preset": "--no-start"}
    for key in fixed:
        if key in own:
            hint = f"; use {own[key]}" if own[key] else ""
            raise ConfigError(f"--set {key}=... is an option of the search itself, not a trial hyper-parameter{hint}")
    if threads is not None:
        fixed["num_threads"] = threads
    res = tune(model, dataset, data_dir=data_dir, max_time=max_time, n_trials=n_trials, storage=storage,
               study_name=study_name, metric=metric, seed=seed, trial_seed=trial_seed, trial_max_time=trial_max_time,
               preset=False if preset_name == "none" else preset_name, start_from_preset=not no_start, **fixed)
    states = res.trials["state"].value_counts().to_dict() if len(res.trials) else {}
    click.echo(f"{len(res.trials)} trials ({', '.join(f'{v} {k.lower()}' for k, v in states.items())}); "
               f"best validation {metric} {res.best_value:.4f} with {res.best_params}")
    click.echo("test " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(res.result.metrics.items())))
    if out:
        click.echo(f"saved to {res.result.save(out)}")


@main.group("datasets")
def datasets_group() -> None:
    """List, download and verify datasets."""


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], wrap: Optional[Dict[int, int]] = None) -> str:
    """Left-aligned columns, two spaces apart, under an upper-case header line.

    Args:
        headers: the column titles.
        rows: one sequence of cells per row (``None`` prints as ``-``).
        wrap: ``{column index: width}``: cells of those columns longer than the width are
            wrapped (at spaces) onto continuation lines.
    """
    import textwrap

    lines_of: List[List[List[str]]] = []  # row -> column -> its lines
    for row in rows:
        cols = []
        for i, cell in enumerate(row):
            text = "-" if cell is None else str(cell)
            width = (wrap or {}).get(i)
            if width:
                cols.append(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [text])
            else:
                cols.append([text])
        lines_of.append(cols)
    widths = [max([len(h)] + [len(line) for cols in lines_of for line in cols[i]]) for i, h in enumerate(headers)]
    out = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for cols in lines_of:
        for k in range(max(len(c) for c in cols)):
            out.append("  ".join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(cols, widths)).rstrip())
    return "\n".join(out)


def _as_dict(row: Any) -> Dict[str, Any]:
    """A listing entry (named tuple or mapping) as a JSON-ready dict (tuples become lists)."""
    data = dict(row._asdict()) if hasattr(row, "_asdict") else dict(row)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


@datasets_group.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output: a JSON list of objects (name, task, description).")
def datasets_list(as_json: bool) -> None:
    """The built-in dataset names, their tasks and a line about each.

    Any folder in LightGCN format (train.txt, test.txt) is accepted too: pass its path.
    """
    from .datasets import available

    rows = [_as_dict(row) for row in available()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    click.echo(format_table(("name", "task", "description"),
                            [(r.get("name"), r.get("task") or None, r.get("description") or None) for r in rows]))


@datasets_group.command("download")
@click.argument("name")
@click.option("--data-dir", default=None, help="Target data folder (default: $GRAPHKIT_DATA, else the cache).")
def datasets_download(name: str, data_dir: Optional[str]) -> None:
    """Download dataset NAME from its official URLs (sha256-checked) unless already present.

    Manifest datasets (gowalla, ml-1m, cora, ...) are fetched file by file and checked
    against the manifest; other ogbn-*/ogbg-* datasets are fetched by the ogb package.
    """
    from . import datasets
    from .datasets._manifest import canonical_name, load_manifest

    manifest = load_manifest(canonical_name(name))
    if manifest is not None and any(f.urls for f in manifest.files):
        paths = datasets.ensure_files(manifest, data_dir, download=True)
        for fname, path in sorted(paths.items()):
            click.echo(f"{path}")
        click.echo(f"{manifest.name}: {len(paths)} file(s) present and checksum-verified")
        return
    ds = datasets.load(name, root=data_dir)
    click.echo(f"{name}: {ds!r}")


@datasets_group.command("verify")
@click.argument("name")
@click.option("--data-dir", default=None, help="Data folder (default: $GRAPHKIT_DATA).")
def datasets_verify(name: str, data_dir: Optional[str]) -> None:
    """Check the sha256 of dataset NAME's local files against its manifest (exit 1 on any mismatch)."""
    from . import datasets
    from .datasets._manifest import canonical_name, load_manifest

    results = datasets.verify(name, data_dir)
    manifest = load_manifest(canonical_name(name))
    bad = 0
    for path, ok in results.items():
        if ok:
            status = "ok"
        elif not Path(path).is_file():
            status, bad = "MISSING", bad + 1
        else:
            status, bad = "CHECKSUM MISMATCH", bad + 1
        click.echo(f"{status:<18} {path}")
    label = manifest.name if manifest else name
    click.echo(f"{label}: {len(results) - bad}/{len(results)} file(s) verified")
    if bad:
        sys.exit(1)


@main.group("models")
def models_group() -> None:
    """List the registered models."""


def _paper_cell(info: Dict[str, Any]) -> Optional[str]:
    """``"He et al., SIGIR 2020"`` from a model's paper fields (None: no citation found)."""
    when = " ".join(str(x) for x in (info.get("venue"), info.get("year")) if x)
    text = ", ".join(x for x in (info.get("authors"), when) if x)
    return text or None


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output: a JSON list of objects (name, task, class_path, paper, authors, "
                   "venue, year, url, presets, fast_presets, fast_preset).")
def models_list(as_json: bool) -> None:
    """The models graphkit fit accepts: task, class, paper, and the datasets with a preset.

    PRESETS are the datasets with the paper's hyper-parameters (--preset paper, the default);
    FAST PRESET the datasets with a time-to-quality recipe (--preset fast), "all" for every dataset.
    """
    from .models import available_models, model_info

    rows = []
    for name in available_models():
        info = _as_dict(model_info(name))
        info["fast_preset"] = bool(info["fast_presets"])
        rows.append(info)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return

    def datasets_cell(names: List[str]) -> Optional[str]:
        return ("all" if "*" in names else ", ".join(names)) if names else None

    click.echo(format_table(
        ("name", "task", "class", "paper", "presets", "fast preset"),
        [(r["name"], r["task"], r["class_path"].rpartition(".")[2], _paper_cell(r), datasets_cell(r["presets"]),
          datasets_cell(r["fast_presets"])) for r in rows], wrap={4: 40}))


if __name__ == "__main__":  # pragma: no cover
    main()
