"""A project folder of the user's own: `kerasgrid init` writes a first one that runs as it is, and
`kerasgrid check` reads its sweep config as the workflow would and says what the sweep will do,
without Snakemake and without training.

`check` takes the steps the workflow takes while Snakemake plans a run (workflow/rules/common.smk:
the schema's one-paragraph errors, its defaults filled in, the sweep built from the config), so
that it fails where a run would fail, with the same paragraph, and otherwise describes the very
sweep a run would schedule. Paths in the config are relative to the folder it runs from, as they
are for snakemake. It then imports the model and data functions, which planning never does,
builds each branch's model on the first batch of the training data (kerasgrid.trial.build_check)
and says what the run would say of the sweep's size and time before it trains
(kerasgrid.running.eta.announcement).
"""

import math
import shlex
from pathlib import Path

from kerasgrid import search
from kerasgrid.config import (
    Sweep, check as check_schema, config_source, fill_defaults, load_schema, read_config, sweep_from_config,
)
from kerasgrid.errors import ConfigError, Direction, KerasgridError, user_line
from kerasgrid.running import eta
from kerasgrid.running.logs import tensorflow_start_hidden
from kerasgrid.search import hyperband
from kerasgrid.sweep import refs
from kerasgrid.trial import backends

# Beside the Snakefile (kerasgrid.cli.snakefile), in a checkout as in the installed package.
STARTER = "examples/starter"  # the project `kerasgrid init` writes: these files of it
STARTER_FILES = ("model.py", "sweep.yaml")
SCHEMA = "workflow/schemas/config.schema.yaml"
# What a sweep writes into the project folder, none of it for version control: `kerasgrid init`
# puts these in the folder's .gitignore.
SWEEP_OUTPUTS = ("results/", "logs/", ".snakemake/")


def _cd(folder) -> str:
    return "" if Path(folder) == Path(".") else f"cd {shlex.quote(str(folder))} && "


def run_command(config, folder=".", cores: int = 2) -> str:
    """The command that runs the sweep `config` from `folder` on `cores`."""
    return (f"{_cd(folder)}snakemake -s $(kerasgrid workflow) --cores {cores} "
            f"--configfile {shlex.quote(str(config))}")


def init(folder, starter: Path) -> list[str]:
    """Write the starter project's files into `folder` (made if missing), or none of them if any
    is there already; the lines that say how to check and run it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise KerasgridError(
            f"{folder} is a file, not a folder: kerasgrid init writes model.py and sweep.yaml into a folder. "
            "Name a folder that does not exist yet (it is made) or one without those files."
        )
    taken = [str(folder / name) for name in STARTER_FILES if (folder / name).exists() or (folder / name).is_symlink()]
    if taken:
        raise KerasgridError(
            f"{' and '.join(taken)} already exist{'s' if len(taken) == 1 else ''}, and kerasgrid init overwrites "
            "nothing, so it wrote no file. Give it a new or empty folder (kerasgrid init my-sweep), or move "
            f"{'that file' if len(taken) == 1 else 'those files'} away first."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in STARTER_FILES:
            with open(folder / name, "xb") as handle:  # "x": not even a file made meanwhile is overwritten
                handle.write((starter / name).read_bytes())
        had_gitignore = (folder / ".gitignore").exists()
        ignored = ignore_sweep_outputs(folder / ".gitignore")
    except OSError as exc:
        raise KerasgridError(
            f"could not write {exc.filename or folder}: {exc.strerror}. Name a folder you may write to."
        ) from exc
    gitignore = folder / ".gitignore"
    if not ignored:  # the user's own named them all
        tail = ""
    elif had_gitignore:
        tail = f", and added {_and(ignored)} to {gitignore}"
    else:
        tail = f", and {gitignore} (which keeps {_and(ignored)} out of git)"
    return [
        f"Wrote {folder / 'model.py'} (a small Keras model and its data, scikit-learn's bundled digits) and "
        f"{folder / 'sweep.yaml'} (the sweep: a small grid, commented){tail}.",
        f"Check it (trains nothing): {_cd(folder)}kerasgrid check sweep.yaml",
        f"Run it (under a minute on 2 cores): {run_command('sweep.yaml', folder)}",
    ]


def ignore_sweep_outputs(path: Path) -> list[str]:
    """Make the .gitignore at `path` name what a sweep writes: a new file, or, where the user has one,
    the lines it lacks appended (nothing else of it changes). The lines written, none if it named them all."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    present = {line.strip().lstrip("/") for line in (text or "").splitlines()}
    missing = [name for name in SWEEP_OUTPUTS if name not in present and name.rstrip("/") not in present]
    if text is None:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write("# What a kerasgrid sweep writes: its results, logs and Snakemake's state.\n")
            handle.writelines(f"{name}\n" for name in missing)
    elif missing:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("" if not text or text.endswith("\n") else "\n")
            handle.writelines(f"{name}\n" for name in missing)
    return missing


def _and(names) -> str:
    return " and ".join(", ".join(names).rsplit(", ", 1))


def check(path, schema_file, build: bool = True, cores: int = 2) -> list[str]:
    """What the sweep in the config file `path` will do, once the config passes every check a run
    makes before it trains, its functions import and (`build`) each branch's model builds on the
    first batch of its data; then what a run on `cores` would say of its size before it trains
    (with the runs finished in this folder, and their pace). ConfigError otherwise."""
    source = config_source([path])
    config = read_config(path)
    schema = load_schema(schema_file)
    check_schema(config, schema, source)
    fill_defaults(config, schema)
    sweep = sweep_from_config(config, source)
    backends.activate(sweep.backend, threads=1)  # before the user's modules import Keras
    found = describe(sweep) + import_callables(sweep)
    if build:
        from kerasgrid.trial.build_check import build_each_branch  # Keras and its backend: only to build

        found += build_each_branch(sweep)
    size = eta.announcement(sweep, cores, False, config["warn_hours"], source)[1]
    return [
        f"{source}: a valid sweep; nothing was trained.",
        *(f"  {name:<10} {text}" for name, text in found),
        *size,
        f"Run it: {run_command(path, cores=cores)}",
    ]


def _dimension_size(key: str, dim) -> str:
    """`3 act`, or for a choice the sum of its branches' sizes: `7 optimizer (adam 3 + sgd 4)`."""
    text = f"{search.size({key: dim}):,} {key}"
    if isinstance(dim, search.Branches):
        text += f" ({' + '.join(f'{name} {search.size(branch):,}' for name, branch in dim.branches.items())})"
    return text


def describe(sweep: Sweep) -> list[tuple[str, str]]:
    """The sweep's plan as (topic, text) pairs: which candidates, how long each trains, what ranks them."""
    space = sweep.space
    if sweep.strategy == "grid":
        candidates = len(sweep.trials)
        dims = " x ".join(_dimension_size(key, dim) for key, dim in space.items())
        found = f"grid: every combination, {candidates:,} candidates ({dims})"
    elif sweep.adaptive:
        candidates, rounds = sum(sweep.round_sizes), sweep.round_sizes
        last = f", the last of {rounds[-1]}" if rounds[-1] != rounds[0] else ""
        sampler = "NSGA-II" if sweep.strategy == "nsga2" else "TPE"
        found = (f"{sweep.strategy}: Optuna's {sampler} proposes {candidates:,} candidates in {len(rounds)} rounds of "
                 f"{rounds[0]}{last}, each round learning from those before (seed {sweep.sampler_seed})")
        if sweep.halving:  # rounds of their brackets' sizes
            found = (f"{sweep.strategy}: Optuna's {sampler} proposes {candidates:,} candidates in {len(rounds)} rounds "
                     f"({', '.join(map(str, rounds))}), each round learning from the results of those before at "
                     f"the longest budget that has enough of them (seed {sweep.sampler_seed})")
    else:
        candidates, count = len(sweep.trials), search.size(space)
        of = "a space with continuous ranges" if math.isinf(count) else f"{int(count):,} combinations"
        found = f"{sweep.strategy}: {candidates:,} candidates drawn from {of} (seed {sweep.sampler_seed})"
    budget = sweep.budget
    size = ("batch size from the grid" if "batch_size" in sweep.grid_keys
            else f"batch size {budget['batch_size']} where a data function returns whole arrays")
    objectives = sweep.objective.get("objectives") or [sweep.objective]
    ranked = "; ".join(f"{o['metric']}, {'lower' if o['direction'] == Direction.MIN.value else 'higher'} is better "
                       f"({o['direction']})" for o in objectives)
    if len(objectives) > 1:
        ranked = f"by Pareto front of {ranked}; the winner: {sweep.objective['winner']}"
    lines = [
        ("search", found),
        ("halving", _halving(sweep, candidates)),
        ("budget", f"{_count(budget['epochs'], 'epoch')} of {_count(budget['steps_per_epoch'], 'step')}, "
                   f"{_validation(sweep)}; {size}"),
        ("objective", ranked),
        ("runs", _runs(sweep, candidates)),
    ]
    if sweep.objective.get("constraints"):
        lines.append(("constraints", ", ".join(sweep.objective["constraints"]) + " (others rank after these)"))
    if sweep.fraction < 1:
        lines.append(("data", f"the tuning runs train on a fraction {sweep.fraction} of the training data"))
    if sweep.confirm:
        changes = ", ".join(f"{key} {value}" for key, value in sorted(sweep.confirm.budget.items()))
        lines.append(("confirm", f"the best {sweep.confirm.top} train again on all the data"
                                 + (f", with {changes}" if changes else "") + "; the best of them wins"))
    return lines


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'s' if number != 1 else ''}"


def _validation(sweep: Sweep) -> str:
    """What each epoch validates on (budget.validation_steps)."""
    steps = sweep.budget.get("validation_steps")
    if sweep.validation is None:
        return "no validation data"
    if not steps:
        return "each validated on all the validation data"
    return f"each validated on the validation data's first {steps:,} batch{'es' if steps != 1 else ''}"


def _entrants(sweep: Sweep, size: int, start: int = 0) -> list[int]:
    """How many of `size` candidates entering at rung `start` at most train in each rung from there."""
    return sweep.schedule.entrants(size, len(sweep.rungs), start)


def _rung_jobs(sweep: Sweep) -> int:
    """The most runs the halvings of the sweep train (a rung two brackets share counts twice)."""
    return sum(hyperband.rung_runs(sweep.schedule, len(sweep.rungs), hyperband.groups(sweep)))


def _halving(sweep: Sweep, candidates: int) -> str:
    if not sweep.halving:
        return "off: every candidate trains the whole budget"
    rungs = f"on (eta {sweep.schedule.eta}): rungs end at {', '.join(map(str, sweep.rungs))} epochs"
    if len(sweep.brackets) == 1:
        size = sweep.round_sizes[0] if sweep.adaptive else candidates
        reach = ", ".join(f"{n:,}" for n in _entrants(sweep, size))
        return f"{rungs}, which at most {reach} candidates{' of a round' if sweep.adaptive else ''} reach"
    starts = ", ".join(f"{b.size:,} from {sweep.rungs[b.start]}" for b in sweep.brackets)
    if sweep.adaptive:
        return (f"{rungs}; {len(sweep.brackets)} brackets (BOHB), a round each in turn, "
                f"starting candidates at an epoch: {starts}")
    return f"{rungs}; {len(sweep.brackets)} brackets (Hyperband) start candidates at an epoch: {starts}"


def _runs(sweep: Sweep, candidates: int) -> str:
    """The training runs of the tuning (Snakemake's jobs that train): one per candidate and seed."""
    seeds = len(sweep.seeds)
    each = (f"{candidates:,} candidates x {seeds} seeds ({', '.join(map(str, sweep.seeds))}), ranked by their mean"
            if seeds > 1 else f"one per candidate, seed {sweep.seed}")
    if sweep.halving:
        most = _rung_jobs(sweep) * seeds
        first = sweep.round_sizes[0] if sweep.adaptive else candidates
        return f"{first * seeds:,} in the first {'round' if sweep.adaptive else 'rung'}, at most {most:,} in all: {each}"
    if sweep.adaptive:
        return f"{sweep.round_sizes[0] * seeds:,} in the first round, {candidates * seeds:,} in all: {each}"
    return f"{candidates * seeds:,}: {each}"


def import_callables(sweep: Sweep) -> list[tuple[str, str]]:
    """Import the model, data and callbacks functions, as every trial will: (topic, text) pairs if
    they import, a ConfigError naming the key, the file and line, and the exception if one does not."""
    for ref in (sweep.model, sweep.train, sweep.validation, sweep.callbacks):
        if ref is None:
            continue
        try:
            with tensorflow_start_hidden():  # the user's module may import TensorFlow: not its chatter
                refs.load(ref)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"{ref.source}: {ref.key} is '{ref.text}', but importing {ref.target} raised "
                f"{type(exc).__name__}: {exc}{_where(exc)}. Fix that file (or install what it imports): every "
                "trial would fail with this error."
            ) from exc
    data = [ref.text for ref in (sweep.train, sweep.validation) if ref]
    found = [("model", f"{sweep.model.text} imports"), ("data", f"{' and '.join(data)} import")]
    return found + ([("callbacks", f"{sweep.callbacks.text} imports")] if sweep.callbacks else [])


def _where(exc: BaseException) -> str:
    found = user_line(exc)
    return f" (line {found[1]} of {found[0]})" if found else ""
