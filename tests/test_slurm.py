"""The sweep on a real SLURM cluster: submitted through Snakemake's SLURM executor plugin with
workflow/profiles/slurm, to the single-node cluster of tests/slurm/start.sh, checked with sacct."""

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Workflow, faulty_config, tiny_config
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep.grid import expand_grid

SLURM_SCRIPTS = REPO / "tests" / "slurm"
PROFILE = "workflow/profiles/slurm"
# The plugin's defaults wait 40 s before the first status check and back off from there: a
# 4-trial sweep would take minutes instead of seconds.
FAST_STATUS_CHECKS = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
# Target of the fault test: the trials and their ranking, without what follows the ranking.
RANKING = "results/leaderboard.tsv"
SACCT_FIELDS = ["JobID", "JobName", "State", "Account", "Partition", "AllocCPUS", "ReqMem", "Timelimit", "WorkDir", "Comment", "SubmitLine"]
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
SESSION_START = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 120))


@pytest.fixture(scope="session")
def slurm():
    """A running cluster; started here (and stopped at the end) unless it was already running."""
    start = subprocess.run(["bash", str(SLURM_SCRIPTS / "start.sh")], capture_output=True, text=True, timeout=900)
    if start.returncode != 0:
        pytest.fail(f"tests/slurm/start.sh exited {start.returncode}:\n{start.stdout}{start.stderr}")
    started_here = "already running" not in start.stdout
    yield
    if started_here:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop.sh")], check=True, capture_output=True, timeout=300)


@pytest.fixture
def cluster(slurm, workflow) -> Workflow:
    """The scratch copy with the two edits the README asks of a cluster user, for our cluster."""
    path = workflow.path(PROFILE) / "config.yaml"
    text = path.read_text(encoding="utf-8")
    for key, value in {"slurm_account": "research", "slurm_partition": "debug"}.items():
        placeholder = yaml.safe_load(text)["default-resources"][key]
        assert text.count(f"{key}: {placeholder}") == 1
        text = text.replace(f"{key}: {placeholder}", f"{key}: {value}")
    path.write_text(text, encoding="utf-8")
    yield workflow
    # A failed test must not leave jobs queued that would hold the node for the next one.
    queued = subprocess.run(["squeue", "--noheader", "--format=%i %Z"], capture_output=True, text=True).stdout
    ours = [line.split()[0] for line in queued.splitlines() if line.split()[1:] == [os.path.realpath(workflow.root)]]
    if ours:
        subprocess.run(["scancel", *ours], check=False)


def submit(workflow: Workflow, config: dict, *args, **kwargs) -> subprocess.CompletedProcess:
    """What a cluster user runs: `snakemake --profile workflow/profiles/slurm` (plus a config)."""
    workflow.write_config(config)
    return workflow.run("--profile", PROFILE, "--configfile", "my.yaml", *FAST_STATUS_CHECKS, *args, timeout=300, **kwargs)


def cluster_jobs(workflow: Workflow) -> list[dict]:
    """sacct's record of every SLURM job submitted from this scratch copy, in submission order.

    `comment` is the plugin's `rule_<rule>_wildcards_<values>`. The cluster keeps it out of the
    accounting database (no AccountingStoreFlags=job_comment), so it is read from the job's
    submit line when sacct's Comment column is empty.
    """
    out = subprocess.run(
        ["sacct", "--allocations", "--noheader", "--parsable2", f"--starttime={SESSION_START}", f"--format={','.join(SACCT_FIELDS)}"],
        capture_output=True, text=True, check=True,
    ).stdout
    jobs = []
    for line in out.splitlines():
        job = dict(zip(SACCT_FIELDS, line.split("|", len(SACCT_FIELDS) - 1)))
        if os.path.realpath(job["WorkDir"]) == os.path.realpath(workflow.root):
            job["comment"] = job["Comment"] or re.search(r"--comment (\S+)", job["SubmitLine"]).group(1)
            jobs.append(job)
    return sorted(jobs, key=lambda job: [int(part) for part in job["JobID"].split("_")])


def ended_jobs(workflow: Workflow, timeout=30) -> list[dict]:
    """cluster_jobs once sacct records all of them as ended (it may lag a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = cluster_jobs(workflow)
        if all(job["State"].split()[0] in ENDED for job in jobs):  # "CANCELLED by 0"
            return jobs
        assert time.monotonic() < deadline, f"sacct still shows unfinished jobs: {jobs}"
        time.sleep(0.5)


def trial_jobs(jobs: list[dict]) -> list[dict]:
    return [job for job in jobs if job["comment"].startswith("rule_train_")]


def rules_of(jobs: list[dict]) -> set[str]:
    return {re.match(r"rule_(\w+?)(_wildcards_|$)", job["comment"]).group(1) for job in jobs}


def without_timing(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if not key.endswith("_seconds")} for row in rows]


def test_each_trial_is_a_slurm_job_and_the_results_equal_a_local_run(cluster, tmp_path):
    config = tiny_config()
    trials = expand_grid(config["grid"])
    local = Workflow(Path(shutil.copytree(cluster.root, tmp_path / "local", symlinks=True)))

    # The local run goes alongside: the cluster's jobs leave the CPUs idle between status checks.
    with ThreadPoolExecutor(1) as pool:
        local_run = pool.submit(local.sweep, config)
        result = submit(cluster, config)
        local_result = local_run.result()
    jobs = ended_jobs(cluster)
    # One SLURM job per trial, all of one run; the ranking ran on this machine, not as jobs.
    trained = trial_jobs(jobs)
    assert sorted(job["comment"] for job in trained) == sorted(f"rule_train_wildcards_{tid}" for tid in trials)
    assert {job["State"] for job in jobs} == {"COMPLETED"}
    assert len({job["JobName"] for job in jobs}) == 1
    assert not rules_of(jobs) & {"leaderboard", "best_params"}
    assert "localrule leaderboard:" in result.output and "localrule best_params:" in result.output
    # With the account, partition and per-trial resources of the profile; as no trial had finished
    # here, each asked for the default runtime (the most; later jobs ask for their pace's), and
    # for the warning before it.
    profile = yaml.safe_load(cluster.path(PROFILE + "/config.yaml").read_text())
    train, runtime = profile["set-resources"]["train"], profile["default-resources"]["runtime"]
    assert {(j["Account"], j["Partition"], j["AllocCPUS"], j["ReqMem"], j["Timelimit"]) for j in trained} == {
        ("research", "debug", "1", f"{train['mem_mb']}M", time.strftime("%H:%M:%S", time.gmtime(runtime * 60)))
    }
    assert all("--signal=USR1@120" in job["SubmitLine"] for job in trained)

    rows = read_leaderboard(cluster.path("results/leaderboard.tsv"))
    assert without_timing(rows) == without_timing(read_leaderboard(local.path("results/leaderboard.tsv")))
    assert sorted(row["trial_id"] for row in rows) == sorted(trials) and {row["status"] for row in rows} == {"ok"}
    assert cluster.path("results/best_params.yaml").read_text() == local.path("results/best_params.yaml").read_text()
    winner = [line for line in result.output.splitlines() if line.startswith("Best ")]
    # Said by best_params as soon as it is known, and again as the run's last lines.
    assert len(winner) == 4 and winner[:2] == winner[2:]
    assert winner == [line for line in local_result.output.splitlines() if line.startswith("Best ")]

    again = submit(cluster, config)
    assert "Nothing to be done" in again.output and "submitted with SLURM jobid" not in again.output
    time.sleep(3)
    assert cluster_jobs(cluster) == jobs


def test_a_trial_killed_on_the_cluster_is_resubmitted_and_finished_trials_are_kept(cluster, faulty):
    # The first attempt of the kill_once trial SIGKILLs itself on the compute node, as the OOM
    # killer would: its SLURM job fails, and the profile's `retries: 1` submits it again.
    config = faulty_config({"fault": ["kill_once", "none"]})
    ids = {params["fault"]: tid for tid, params in expand_grid(config["grid"]).items()}
    result = submit(cluster, config, RANKING)
    assert faulty.path("killed.marker").exists() and "Trying to restart job" in result.output
    jobs = trial_jobs(ended_jobs(cluster))
    states = {fault: [j["State"] for j in jobs if j["comment"] == f"rule_train_wildcards_{tid}"] for fault, tid in ids.items()}
    assert states == {"kill_once": ["FAILED", "COMPLETED"], "none": ["COMPLETED"]}
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert {(row["fault"], row["status"]) for row in rows} == {("kill_once", "ok"), ("none", "ok")}
    finished = faulty.snapshot()

    # Growing the grid submits the new trial alone (a trial that raises is recorded as failed,
    # not retried); the two finished trials keep their files untouched.
    grown = faulty_config({"fault": ["kill_once", "none", "raise"]})
    before = cluster_jobs(cluster)
    submit(cluster, grown, RANKING)
    new = trial_jobs(ended_jobs(cluster)[len(before):])
    raised = next(tid for tid, params in expand_grid(grown["grid"]).items() if params["fault"] == "raise")
    assert [(j["comment"], j["State"]) for j in new] == [(f"rule_train_wildcards_{raised}", "COMPLETED")]
    assert {k: v for k, v in faulty.snapshot().items() if k in finished} == finished
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert [row["status"] for row in rows] == ["ok", "ok", "failed"]


def test_a_halving_sweep_submits_every_rung_as_a_job_and_ranks_as_locally(cluster, tmp_path):
    from test_halving import KNOWN_LOSSES, halving_config

    cluster.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    config = halving_config([0.1, 0.2, 0.3])
    config["grid"]["fault"] = ["none"]
    config["callbacks"] = "known.py:callbacks"  # a user's callback, its state carried from job to job
    config["objective"] = [{"metric": "loss"}, {"metric": "params_count"}]  # promoted by Pareto front
    local = Workflow(Path(shutil.copytree(cluster.root, tmp_path / "local", symlinks=True)))
    local.write_config(config)
    local_result = local.run(RANKING, "--cores", "2", "--configfile", "my.yaml")
    submit(cluster, config, RANKING)
    jobs = ended_jobs(cluster)
    # Rungs end at 1, 3 and 9 epochs: 3 candidates, then ceil(3/3) = 1, then 1 (halving_config's one
    # bracket, successive halving); every rung its own job, the promotions decided where snakemake runs.
    assert sorted(rules_of(jobs)) == ["rung", "train"] and len(jobs) == 5
    assert {job["State"] for job in jobs} == {"COMPLETED"}
    # The first rung's jobs asked for the profile's default runtime, as nothing had finished; the
    # promoted ones, ready once it had, for their pace's (seconds here: the floor of 10 minutes).
    assert [job["Timelimit"] for job in jobs] == ["01:00:00"] * 3 + ["00:10:00"] * 2
    rows = read_leaderboard(cluster.path(RANKING))
    assert without_timing(rows) == without_timing(read_leaderboard(local.path(RANKING)))
    assert [(row["q"], row["rung"]) for row in rows] == [("0.1", "2"), ("0.2", "0"), ("0.3", "0")]
    assert [(row["pareto_rank"], row["params_count"]) for row in rows] == [("1", "2"), ("1", "2"), ("2", "2")]
    assert "localcheckpoint promotions:" in local_result.output
    # Three jobs trained the winner (to epochs 1, 3, 9); its callback counted on from rung to rung.
    winner = cluster.path(f"results/trials/{rows[0]['trial_id']}")
    assert [(winner / rung / "epochs_seen.txt").read_text() for rung in ("rungs/1", "rungs/3", ".")] == ["1", "3", "9"]


def test_on_slurm_kerasgrid_asks_for_no_gpu_and_leaves_each_jobs_devices_alone(cluster, monkeypatch):
    # The login node "has" two GPUs here. On a cluster the profile's gpu or gres asks SLURM for
    # GPUs and SLURM sets each job's devices: kerasgrid must neither ask for any on its own nor
    # set CUDA_VISIBLE_DEVICES, so a job sees what SLURM (here: sbatch, passing ours on) gave it.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    config = tiny_config(grid={"lr": [0.01], "act_in": ["relu", "tanh"], "act_out": ["sigmoid"], "loss": ["mean_squared_error"]})
    submit(cluster, config, RANKING)
    trained = trial_jobs(ended_jobs(cluster))
    assert len(trained) == 2 and {job["State"] for job in trained} == {"COMPLETED"}
    assert not [job["SubmitLine"] for job in trained if "--gpus" in job["SubmitLine"] or "--gres" in job["SubmitLine"]]
    records = [yaml.safe_load(p.read_text()) for p in cluster.root.glob("results/trials/*/metrics.json")]
    assert [r["cuda_visible_devices"] for r in records] == ["0,1", "0,1"]


def test_a_confirmed_repeated_sweep_on_a_fraction_submits_each_run_and_ranks_as_locally(cluster, tmp_path):
    from test_confirm import CONSTANT, confirm_config

    cluster.path("constant.py").write_text(CONSTANT, encoding="utf-8")
    config = confirm_config([0.0, 0.1, 0.5], repeats=2)
    local = Workflow(Path(shutil.copytree(cluster.root, tmp_path / "local", symlinks=True)))
    local.write_config(config)
    local.run(RANKING, "--cores", "2", "--configfile", "my.yaml")
    submit(cluster, config, RANKING)
    jobs = ended_jobs(cluster)
    # 3 candidates x 2 seeds on the fraction, then the 2 finalists x 2 seeds on all the data: every run
    # a job of its own; the finalists are chosen where snakemake runs.
    assert sorted(job["comment"].split("_wildcards_")[0] for job in jobs) == ["rule_confirm"] * 4 + ["rule_train"] * 6
    assert {job["State"] for job in jobs} == {"COMPLETED"}
    rows = read_leaderboard(cluster.path(RANKING))
    assert without_timing(rows) == without_timing(read_leaderboard(local.path(RANKING)))
    assert [(row["confirmed"], row["seeds"]) for row in rows] == [("yes", "2"), ("yes", "2"), ("no", "2")]


def test_a_conditional_tpe_search_with_halving_submits_every_rung_and_matches_a_local_run(cluster, tmp_path):
    from test_adaptive import rounds_of
    from test_conditional import CONDITIONAL_MODEL, e2e_config

    cluster.path("cond.py").write_text(CONDITIONAL_MODEL, encoding="utf-8")
    # A nested choose, proposed BOHB's way with rungs at 1 and 3 epochs: 2 rounds, one per bracket
    # (3 candidates from 1 epoch, 2 from 3). One test for both, as each SLURM test costs minutes.
    config = e2e_config(strategy="tpe", trials=5, batch=3, halving={"eta": 3, "min_epochs": 1})
    config["budget"]["epochs"] = 3
    local = Workflow(Path(shutil.copytree(cluster.root, tmp_path / "local", symlinks=True)))
    local.write_config(config)
    local.run(RANKING, "--cores", "2", "--configfile", "my.yaml")
    result = submit(cluster, config, RANKING)
    jobs = ended_jobs(cluster)
    assert rules_of(jobs) == {"rung", "train"} and {job["State"] for job in jobs} == {"COMPLETED"}
    assert "localcheckpoint propose:" in result.output and "localcheckpoint promotions:" in result.output
    assert [(r["bracket"], len(r["proposals"])) for r in rounds_of(cluster)] == [(0, 3), (1, 2)]
    assert rounds_of(cluster) == rounds_of(local)  # the same proposals, told the same results at the same budgets
    rows = read_leaderboard(cluster.path(RANKING))
    assert without_timing(rows) == without_timing(read_leaderboard(local.path(RANKING)))
    assert {row["status"] for row in rows} == {"ok"}  # each trial got exactly its branches' keys
    # One job per rung a trial trained to: a first rung or a promotion, each its own SLURM job.
    assert len(jobs) == len(list(cluster.root.glob("results/trials/**/metrics.json")))
    assert {job["comment"].split("_wildcards_")[1].split("_")[0] for job in jobs} == {row["trial_id"] for row in rows}

    again = submit(cluster, config, RANKING)
    assert "Nothing to be done" in again.output and "submitted with SLURM jobid" not in again.output


# Paces a trial by the clock, not the CPU (the machine's load varies): 0.5 s after every batch.
SLOW_BATCHES = """import time

import keras


class Slow(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.5)


def callbacks(params):
    return [Slow()]
"""


def test_a_trial_longer_than_its_jobs_time_limit_goes_on_over_several_jobs_and_ends_as_locally(cluster, tmp_path):
    from conftest import FAULTY_MODEL

    # Each job may run a minute and asks for the warning 10 s before it. SLURM checks its timers
    # every 30 s and warns at the first check with under 40 s left (measured here), so 20 to 50 s
    # into a job (the profile's @120: 2 to 3 minutes before its limit). A job's worker trains from
    # about 10 s on, so no job trains the trial's 50 s (10 epochs of 10 batches of 0.5 s) alone.
    profile = cluster.path(PROFILE) / "config.yaml"
    text = profile.read_text(encoding="utf-8")
    shipped = "slurm_extra: \"'--signal=USR1@120'\""
    assert text.count(shipped) == 1
    profile.write_text(text.replace(shipped, "slurm_extra: \"'--signal=USR1@10'\"\n    runtime: 1"), encoding="utf-8")
    cluster.path("faulty.py").write_text(FAULTY_MODEL, encoding="utf-8")
    cluster.path("slow.py").write_text(SLOW_BATCHES, encoding="utf-8")
    config = faulty_config({"fault": ["none"]}, callbacks="slow.py:callbacks",
                           budget={"epochs": 10, "steps_per_epoch": 10})
    (trial,) = expand_grid(config["grid"])
    local = Workflow(Path(shutil.copytree(cluster.root, tmp_path / "local", symlinks=True)))
    local.write_config(config)
    with ThreadPoolExecutor(1) as pool:  # the local run goes alongside, unbroken
        local_run = pool.submit(local.run, RANKING, "--cores", "1", "--configfile", "my.yaml")
        result = submit(cluster, config, RANKING)
        local_run.result()

    jobs = trial_jobs(ended_jobs(cluster))
    print(f"the trial took {len(jobs)} jobs: {', '.join(job['State'] for job in jobs)}")
    # Each job but the last saved the trial when warned and ended; Snakemake submitted it again
    # (the profile's preemptible-retries), and the last one finished it.
    assert 2 <= len(jobs) <= 4 and {job["Timelimit"] for job in jobs} == {"00:01:00"}
    assert [job["State"] for job in jobs[:-1]] == ["FAILED"] * (len(jobs) - 1) and jobs[-1]["State"] == "COMPLETED"
    assert result.output.count("Trying to restart job") == len(jobs) - 1
    assert result.output.count("kerasgrid: SIGUSR1 (the warning SLURM sends before the job's time limit)") >= 1
    # Identical to the run trained straight through: the metrics, every epoch's row, the ranking.
    ours, theirs = (w.path(f"results/trials/{trial}") for w in (cluster, local))
    record, straight = (json.loads((folder / "metrics.json").read_text()) for folder in (ours, theirs))
    assert record["metrics"] == straight["metrics"] and record["objective"] == straight["objective"]
    assert (ours / "history.csv").read_bytes() == (theirs / "history.csv").read_bytes()
    assert without_timing(read_leaderboard(cluster.path(RANKING))) == without_timing(read_leaderboard(local.path(RANKING)))
    assert record["resumed_from_checkpoint"] and record["resumed_from_epoch"] > 0 and not straight["resumed_from_epoch"]
    assert not (ours / "checkpoint").exists()
