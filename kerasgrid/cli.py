"""The `kerasgrid` command: a first project, a config checked, the workflow's path, a sweep's results.

`kerasgrid workflow` prints the path of kerasgrid's Snakefile, for running a sweep from any folder:
`snakemake -s $(kerasgrid workflow) --cores 4 --configfile sweep.yaml`.
`kerasgrid init` and `kerasgrid check` start a project folder and check its config (kerasgrid.project).
`kerasgrid summary` ranks whatever trials have finished on disk, so it works during a sweep, after
one, and after one that was stopped. It reads plain files only: no TensorFlow, no Snakemake.
`kerasgrid mlflow` logs to MLflow whatever of a sweep is not logged yet (kerasgrid.results.tracking).
"""

import argparse
import dataclasses
import sys
from collections import Counter
from pathlib import Path

from kerasgrid import project, records
from kerasgrid.errors import Direction, KerasgridError, Status
from kerasgrid.results.leaderboard import format_winner, leaderboard_table
from kerasgrid.results.ranking import by_front, epochs_target, objectives_of
from kerasgrid.results.tables import console_lines, failure_lines, front_lines
from kerasgrid.running import eta
from kerasgrid.search import hyperband
from kerasgrid.search.rounds import trial_rounds
from kerasgrid.sweep import runs


def recorded_objective(finished: list[dict]) -> tuple[dict, str]:
    """The objective most trials recorded, and a note if they disagree."""
    seen = Counter(
        (record["objective"]["metric"], record["objective"].get("direction", Direction.MIN.value))
        for record in finished
        if record.get("objective", {}).get("metric")
    )
    if not seen:
        return {"metric": "loss", "direction": Direction.MIN.value}, "no trial recorded an objective"
    (metric, direction), _ = seen.most_common(1)[0]
    note = "as recorded in the trials"
    if len(seen) > 1:
        others = ", ".join(f"{m} ({d})" for (m, d) in seen if (m, d) != (metric, direction))
        note = f"as most trials recorded (others recorded {others}; --metric and --direction choose)"
    return {"metric": metric, "direction": direction}, note


def _plan(results: Path) -> dict:
    """The sweep's plan (results/search.json), or {} where there is none (a sweep of long ago)."""
    try:
        return records.read_json(results / "search.json")
    except (OSError, ValueError):
        return {}


def _brackets(results: Path, plan: dict, trials: set[str]) -> dict[str, int] | None:
    """Each trial's Hyperband bracket, from the plan and the promotions on disk (see the
    leaderboard's `bracket`): a TPE round's file says its bracket; a grid's is dealt again."""
    rounds = [records.read_json(path) for path in results.glob("rounds/*.json")]
    if rounds and all("bracket" in found for found in rounds):
        return {entry["trial_id"]: found["bracket"] for found in rounds for entry in found["proposals"]}
    halving = plan.get("halving") or {}
    if len(halving.get("brackets") or []) < 2:
        return None
    settings = {"sizes": halving["brackets"], "seed": halving.get("deal_seed"), "rungs": plan["rungs"]}
    return hyperband.dealt_brackets(settings, trials, sorted(results.glob("brackets/*/*.json")))


@dataclasses.dataclass
class OnDisk:
    """The runs a sweep's folder holds: each run's furthest record (`finished`), every record of
    every rung (`every_run`), the finalists' confirmations, how many runs started but did not
    finish, and whether any trial has rungs (halving)."""

    finished: list[dict]
    every_run: list[dict]
    confirmations: list[dict]
    unfinished: int
    halving: bool


def on_disk(trials_dir: Path) -> OnDisk:
    found = OnDisk([], [], [], 0, False)
    for trial in sorted(path for path in trials_dir.iterdir() if path.is_dir()):
        # The run with the config's seed, and with repeats every further seed's (kerasgrid.sweep.runs).
        for folder in [trial, *sorted(trial.glob("seeds/*"))]:
            # With halving, a run's record is that of the furthest rung it finished.
            paths = [folder / "metrics.json", *folder.glob("rungs/*/metrics.json")]
            done = [records.read_json(path) for path in paths if path.exists()]
            found.every_run += done  # every rung's too: the time left counts them
            found.halving |= len(paths) > 1
            if done:
                found.finished.append(max(done, key=epochs_target))
            elif (folder / "params.json").exists() or any(folder.glob("rungs/*/params.json")):
                found.unfinished += 1  # running now, or stopped before it ended
        confirmation = runs.run_dir(trial, confirm=True)
        found.confirmations += [records.read_json(path) for path in
                                [confirmation / "metrics.json", *sorted(confirmation.glob("seeds/*/metrics.json"))]
                                if path.exists()]
    return found


def _asked_objective(plan: dict, finished: list[dict], metric: str | None, direction: str | None) -> tuple[dict, str]:
    """The objective to rank on: the sweep's (its plan's: every objective and constraint, as the
    leaderboard ranks), else the one the trials recorded; or the metric and direction asked for."""
    objective, note = recorded_objective(finished)
    if plan.get("objective"):
        objective, note = plan["objective"], "as the sweep ranks them"
    if metric:
        recorded = objective if objective["metric"] == metric else {}
        objective, note = {"metric": metric, "direction": recorded.get("direction", Direction.MIN.value)}, "as asked"
    if direction:
        objective = {**objective, "direction": Direction(direction).value}
        if objective.get("objectives"):
            objective["objectives"] = [{**objective["objectives"][0], "direction": objective["direction"]},
                                       *objective["objectives"][1:]]
    for record in finished:
        if record["status"] == Status.OK.value and objective["metric"] not in record["metrics"] \
                and objective["metric"] not in (record.get("measures") or {}):
            logged = ", ".join(sorted(record["metrics"]))
            raise KerasgridError(
                f"trial {record['trial_id']} did not log {objective['metric']}; it logged: {logged}. "
                "Give --metric one of these."
            )
    return objective, note


@dataclasses.dataclass
class Table:
    """What `kerasgrid summary` ranks: the objective (and how it was chosen), the ranking, and the
    leaderboard's header and rows (kerasgrid.results.leaderboard.leaderboard_table), as
    results/leaderboard.tsv has them for the same trials."""

    objective: dict
    note: str
    ranked: list[dict]
    header: list[str]
    rows: list[list[str]]


def summary_table(results, found: OnDisk, metric: str | None = None, direction: str | None = None) -> Table:
    """The leaderboard of the runs `found` in the folder `results`, made by the function that
    writes results/leaderboard.tsv, with what the folder says of rungs, brackets, rounds and
    confirmations."""
    results = Path(results)
    plan = _plan(results)
    objective, note = _asked_objective(plan, found.finished, metric, direction)
    rungs = sorted({epochs_target(record) for record in found.every_run}) if found.halving else None
    if found.halving and plan.get("rungs"):
        rungs = plan["rungs"]  # the sweep's own, even where no record is at a rung yet
    trials = {record["trial_id"] for record in found.finished}
    brackets = _brackets(results, plan, trials) if found.halving else None
    repeats_ = max(Counter(record["trial_id"] for record in found.finished).values())
    ranked, header, rows = leaderboard_table(
        found.finished, objective, sorted({key for record in found.finished for key in record["params"]}),
        f"{results / 'trials'} ({note})", rungs, trial_rounds(sorted(results.glob("rounds/*.json"))) or None,
        repeats_, found.confirmations or None, brackets)
    return Table(objective, note, ranked, header, rows)


def summary_rows(results="results", metric: str | None = None, direction: str | None = None) -> list[dict]:
    """Every row of `kerasgrid summary`'s table, whole, by column: as `read_leaderboard` reads
    results/leaderboard.tsv."""
    table = summary_table(results, on_disk(Path(results) / "trials"), metric, direction)
    return [dict(zip(table.header, row)) for row in table.rows]


def summary(results="results", top: int = 10, metric: str | None = None, direction: str | None = None) -> list[str]:
    """The lines `kerasgrid summary` prints: progress, the ranked top trials, the winner."""
    trials_dir = Path(results) / "trials"
    if not trials_dir.is_dir():
        raise KerasgridError(
            f"{trials_dir} does not exist. Run a sweep first, or point --results at the folder "
            "a sweep wrote (the one that holds trials/)."
        )
    found = on_disk(trials_dir)
    finished = found.finished
    counts = Counter(record["status"] for record in finished)
    statuses = ", ".join(f"{counts[s.value]} {s.value}" for s in Status if counts[s.value])
    kind = "runs" if len({r["trial_id"] for r in finished}) < len(finished) else "trials"  # repeats: several seeds
    lines = [
        f"{trials_dir}: {len(finished)} {kind} finished" + (f" ({statuses})" if finished else "")
        + f", {found.unfinished} started but not finished."
    ]
    lines += progress_lines(Path(results) / eta.PLAN_FILE, found.every_run, halving_finished(Path(results), found))
    if not finished:
        return lines
    table = summary_table(results, found, metric, direction)
    rows = [dict(zip(table.header, row)) for row in table.rows]
    shown = console_lines(rows, table.objective, top)
    lines += [f"{shown[0]}, {table.note}:", *shown[1:]]
    if top < len(table.rows):
        lines.append(f"... {len(table.rows) - top} more (--top {len(table.rows)} shows them all)")
    failures = failure_lines(rows, str(Path(results) / "leaderboard.tsv"))
    lines += [""] * bool(failures) + failures
    front = front_lines(rows)  # as the run's console ends
    lines += [""] * bool(front) + front
    winner = summary_winner(table.ranked, table.objective, bool(found.confirmations))
    if winner:
        lines += ["", *format_winner(winner)]
    return lines


def summary_winner(ranked: list[dict], objective: dict, confirmed: bool) -> dict | None:
    """The winner as best_params.yaml names it (kerasgrid.results.leaderboard.best), from the
    ranking's first entry; None where the leaderboard has no winner (not ok, keeps no constraint,
    or, with confirm, not confirmed)."""
    first = ranked[0]
    if first["status"] != Status.OK.value or first.get("feasible") is False or (confirmed and not first["confirmed"]):
        return None
    winner = {"trial_id": first["trial_id"], "objective": {**{k: objective[k] for k in ("metric", "direction")},
                                                           "value": first["objective_value"]},
              "params": first["params"]}
    if first.get("runs", 1) > 1:
        winner["repeats"] = {"seeds": first["run_seeds"], "values": first["run_values"], "std": first["objective_std"]}
    if by_front(objective):
        winner["objectives"] = [{**o, "value": value} for o, value in zip(objectives_of(objective), first["objective_values"])]
        winner["pareto_rank"] = first["pareto_rank"]
        winner["chosen_by"] = objective.get("winner", "first")
    return winner


def halving_finished(results: Path, found: OnDisk) -> bool:
    """Whether a halving sweep is finished: its leaderboard, written once every rung's promotions
    are decided and trained (and removed when the plan changes), is newer than every run's record,
    and no run is under way. Its plan only says how many runs a rung takes at most."""
    leaderboard = results / "leaderboard.tsv"
    if not found.halving or found.unfinished or not leaderboard.is_file():
        return False
    newest = max((path.stat().st_mtime for path in results.glob("trials/**/metrics.json")), default=0.0)
    return leaderboard.stat().st_mtime >= newest


def progress_lines(plan_file, done: list[dict], finished: bool = False) -> list[str]:
    """The runs to go of the plan the last run wrote (results/eta.json) and the time left at the
    pace of the runs finished; none for a sweep run before kerasgrid wrote one. A `finished`
    halving sweep says so: halving stopped the runs it did not promote."""
    plan = eta.read_plan(plan_file)
    if plan is None:
        return []
    if finished:
        return [f"all {len(done):,} runs of the sweep finished, on every rung; halving stopped the others "
                "(results/leaderboard.tsv ranks them)."]
    counts = Counter(epochs_target(record) for record in done)
    plan = dataclasses.replace(plan.with_done(counts), pace=eta.pace(done, plan.budget or {}))
    return [line.removeprefix("kerasgrid: ") for line in plan.lines()]


def merged_configs(paths) -> dict:
    """The configs in `paths`, each updating the one before at every level, as snakemake merges
    the files given to --configfile (each read as snakemake reads one: kerasgrid.config.read_config)."""
    from kerasgrid.config import read_config

    def merge(into: dict, update: dict) -> dict:
        for key, value in update.items():
            into[key] = merge(dict(into[key]), value) if isinstance(value, dict) and isinstance(into.get(key), dict) \
                else value
        return into

    config: dict = {}
    for path in paths:
        merge(config, read_config(path))
    return config


def log_to_mlflow(configs, results="results") -> list[str]:
    """What `kerasgrid mlflow` prints, once it has logged every run of the sweep in `results` that is
    not logged yet, and the sweep's parent run, to the tracker of the config's `mlflow` key."""
    from kerasgrid.config import check, config_source, fill_defaults, load_schema, mlflow_settings
    from kerasgrid.errors import ConfigError
    from kerasgrid.results.tracking import Target, log_sweep, write_summary

    source = config_source(configs)
    config = merged_configs(configs)
    schema = load_schema(snakefile().parent / "workflow" / "schemas" / "config.schema.yaml")
    check(config, schema, source)
    settings = mlflow_settings(fill_defaults(config, schema), source)
    if settings is None:
        raise ConfigError(
            f"{source}: mlflow is not set, so there is no tracker to log to. Add it, e.g. mlflow: "
            "{tracking_uri: http://127.0.0.1:5000, experiment: digits}, or name the config that has it."
        )
    if not (Path(results) / "trials").is_dir():
        raise KerasgridError(f"{Path(results) / 'trials'} does not exist. Run a sweep first, or point --results at "
                             "the folder a sweep wrote (the one that holds trials/).")
    target = Target(**settings, results=str(results), source=source)
    summary = log_sweep(target)
    write_summary(summary, Path(results) / "mlflow.json")
    if summary["error"]:
        raise KerasgridError(summary["error"])
    lines = [f"Logged {summary['logged']} trial runs to MLflow at {target.tracking_uri}, experiment "
             f"'{target.experiment}' ({summary['up_to_date']} were logged already); the sweep's run is "
             f"{summary['sweep_run_id']}."]
    if not (Path(results) / "leaderboard.tsv").is_file():
        lines.append("The sweep has no leaderboard yet: its run gets the leaderboard, the plots and the winner's "
                     "model when snakemake finishes the sweep.")
    return lines


def snakefile() -> Path:
    """kerasgrid's Snakefile: shipped inside the installed package, or at the top of a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_workflow" / "Snakefile", package.parent / "Snakefile"):
        if candidate.is_file():
            return candidate
    raise KerasgridError(
        f"kerasgrid's workflow is not beside its package {package}: reinstall kerasgrid "
        "(pip install, or `make install` in a checkout)"
    )


def _at_least_one(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return number


def add_project_commands(commands) -> None:
    """`kerasgrid init` and `kerasgrid check`."""
    init = commands.add_parser(
        "init",
        help="write a first sweep (a model file and sweep.yaml) that runs as it is",
        description=(
            "Write a small working project into FOLDER: model.py (a Keras model and its data, "
            "scikit-learn's bundled digits, commented) and sweep.yaml (a small grid, commented), and a "
            ".gitignore for what a sweep writes (results/, logs/, .snakemake/). It overwrites nothing: if "
            "either file is there, it writes neither, and to a .gitignore of yours it only adds the lines it lacks."
        ),
    )
    init.add_argument("folder", nargs="?", default=".", metavar="FOLDER",
                      help="where to write them, made if missing (default: the current folder)")
    check = commands.add_parser(
        "check",
        help="check a sweep's config and say what the sweep will do, without training",
        description=(
            "Check CONFIG as a snakemake run would before it trains (YAML syntax with the line and "
            "column, unknown keys, references to the model and data functions, ranges, search), "
            "import the model and data functions, build each branch's model (the grid's first "
            "combination's where there is no choice) on the first batch of the training data, without "
            "training it, and print what the sweep will do: the strategy, candidates and runs, the "
            "budget and the objective, then the runs to train, the time left and a big sweep's warning, "
            "as the run would print them. Paths in CONFIG are relative to the current folder, as they "
            "are for snakemake. Exits with 1 on an error."
        ),
    )
    check.add_argument("config", nargs="?", default="config.yaml", metavar="CONFIG",
                       help="the sweep's config file (default: %(default)s, as for snakemake)")
    check.add_argument("--no-build", dest="build", action="store_false",
                       help="skip building each branch's model on the first batch of data (TensorFlow's start-up "
                            "and the data's first read)")
    check.add_argument("--cores", type=_at_least_one, default=2,
                       help="the cores the run will train on, for its estimate (default: %(default)s)")


def project_command(args) -> list[str]:
    """The lines `kerasgrid init` or `kerasgrid check` prints."""
    workflow = snakefile().parent
    if args.command == "init":
        return project.init(args.folder, workflow / project.STARTER)
    return project.check(args.config, workflow / project.SCHEMA, args.build, args.cores)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kerasgrid", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser(
        "summary",
        help="print the leaderboard of a finished or unfinished sweep",
        description=(
            "Rank every trial that has finished on disk (results/trials/*/metrics.json), "
            "including any whose grid value has since been removed, and say how many have not "
            "finished yet. Runs nothing. results/leaderboard.tsv, by contrast, covers the "
            "current grid of the last finished run."
        ),
    )
    show.add_argument("--results", default="results", help="the folder the sweep wrote (default: %(default)s)")
    show.add_argument("--top", type=_at_least_one, default=10, help="how many trials to list (default: %(default)s)")
    show.add_argument("--metric", help="rank on this logged metric instead of the trials' recorded objective")
    show.add_argument("--direction", choices=[d.value for d in Direction],
                      help="min if smaller is better, max if larger is (default: as recorded, else min)")
    commands.add_parser(
        "workflow",
        help="print the path of kerasgrid's Snakefile",
        description=(
            "Print the path of kerasgrid's Snakefile, to run a sweep from your own project folder: "
            "snakemake -s $(kerasgrid workflow) --cores 4 --configfile sweep.yaml. Results and "
            "logs land in that folder, and the paths in sweep.yaml are relative to it."
        ),
    )
    add_project_commands(commands)
    track = commands.add_parser(
        "mlflow",
        help="log a sweep's runs to MLflow, skipping what is already logged",
        description=(
            "Log to the MLflow tracker that the config's mlflow key names every run of a trial on disk that is "
            "not logged yet (a halving trial up to the rung it reached), then the sweep's parent run with the "
            "leaderboard, best_params.yaml, the plots and the winner's model, as far as they exist. Whatever is "
            "logged already is skipped, so it can run at any time: after the tracker was down, or for a sweep "
            "trained before the key was set. Trains nothing."
        ),
    )
    track.add_argument("configs", nargs="*", default=["config.yaml"], metavar="CONFIG",
                       help="the sweep's config, as given to snakemake --configfile (several are merged in order; "
                            "default: config.yaml)")
    track.add_argument("--results", default="results", help="the folder the sweep wrote (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "workflow":
            lines = [str(snakefile())]
        elif args.command == "mlflow":
            lines = log_to_mlflow(args.configs, args.results)
        elif args.command in ("init", "check"):
            lines = project_command(args)
        else:
            lines = summary(args.results, args.top, args.metric, args.direction)
    except KerasgridError as exc:
        print(f"kerasgrid: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
