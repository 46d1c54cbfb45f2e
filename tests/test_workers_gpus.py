"""GPUs shared out among warm workers, tested without GPUs: CUDA_VISIBLE_DEVICES as each worker
process sees it, read from /proc while the trials run."""

import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import tiny_config
from kerasgrid.running.workers import TrialKilled, WorkerPool
from kerasgrid.trial.resume import remove_state
from test_workers import metrics, task

GPUS = ("0", "1", "2", "3")


class LiveWorkers:
    """Samples, every 10 ms, which worker processes of this test are alive and the
    CUDA_VISIBLE_DEVICES each was started with: `snapshots` is a list of {pid: value}."""

    def __init__(self):
        self.snapshots = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.is_set():
            self.snapshots.append(self.now())
            self._stop.wait(0.01)

    @staticmethod
    def now() -> dict[int, str | None]:
        live = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid, state = int(stat.rsplit(")", 1)[1].split()[1]), stat.rsplit(")", 1)[1].split()[0]
                if ppid != os.getpid() or state == "Z" or not LiveWorkers._is_worker(entry):
                    continue
                environ = (entry / "environ").read_bytes()
                # An exiting process loses its memory, and with it its environment (read as
                # empty), before it turns zombie: a worker that is still one after the read was
                # alive when it was read.
                if not LiveWorkers._is_worker(entry):
                    continue
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
            env = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
            value = env.get(b"CUDA_VISIBLE_DEVICES")
            live[int(entry.name)] = value.decode() if value is not None else None
        return live

    @staticmethod
    def _is_worker(entry: Path) -> bool:
        return b"kerasgrid.running.workers" in (entry / "cmdline").read_bytes()


def gpu_task(tmp_path, name, params, gpus=1, model="waits"):
    return {**task(tmp_path, name, params, model=model), "gpus": gpus}


def test_eight_trials_on_four_gpus_never_share_one_and_a_dead_workers_gpu_is_freed(tmp_path):
    pool = WorkerPool(gpus=GPUS)
    # One set of job threads for the whole test, as Snakemake keeps: a worker is bound to the
    # thread that started it (it dies with it, see workers._die_with_parent).
    jobs = ThreadPoolExecutor(9)
    try:
        trials = [gpu_task(tmp_path, f"t{i}", {"sleep": 0.3, "i": i}) for i in range(8)]
        dies = gpu_task(tmp_path, "dies", {}, model="dies")
        # More jobs at once than GPUs, as Snakemake starts without --resources gpu=4: the rest wait.
        with LiveWorkers() as seen:
            done = [jobs.submit(pool.run, t) for t in trials]
            died = jobs.submit(pool.run, dies)
            for job in done:
                job.result()
            with pytest.raises(TrialKilled, match=r"killed by signal 9"):
                died.result()

        records = [metrics(t) for t in trials]
        assert {r["status"] for r in records} == {"ok"}
        assert {r["cuda_visible_devices"] for r in records} == set(GPUS)  # each trial on one GPU, all four used
        by_worker = {}
        for r in records:
            by_worker.setdefault(r["pid"], set()).add(r["cuda_visible_devices"])
        assert all(len(gpus) == 1 for gpus in by_worker.values())  # a worker keeps its GPU
        assert len(by_worker) <= len(GPUS) + 1  # warm: reused, bar the one started after the death
        assert len({pid for snapshot in seen.snapshots for pid in snapshot}) >= len(GPUS)
        for snapshot in seen.snapshots:
            gpus = list(snapshot.values())
            assert set(gpus) <= set(GPUS), f"a live worker without a GPU of the pool: {snapshot}"
            assert len(gpus) == len(set(gpus)), f"two live workers on one GPU: {snapshot}"

        # The dead worker's GPU came back: four trials that only finish together all finish.
        together = [gpu_task(tmp_path, f"together{i}", {"barrier": str(tmp_path / "barrier"), "parties": 4, "name": str(i)}) for i in range(4)]
        for job in [jobs.submit(pool.run, t) for t in together]:
            job.result()
        assert [metrics(t)["status"] for t in together] == ["ok"] * 4
        assert sorted(metrics(t)["cuda_visible_devices"] for t in together) == list(GPUS)
    finally:
        pool.close()
        jobs.shutdown()
    assert pool.gpus.free == GPUS and LiveWorkers.now() == {}


def gpu_loads(snapshot: dict) -> dict:
    loads = {}
    for gpus in snapshot.values():
        loads[gpus] = loads.get(gpus, 0) + 1
    return loads


def test_two_trials_per_gpu_fill_both_gpus_never_more_and_train_as_they_would_alone(tmp_path):
    pool = WorkerPool(gpus=GPUS[:2], trials_per_gpu=2, log_path=str(tmp_path / "workers.log"))
    jobs = ThreadPoolExecutor(10)
    barrier = str(tmp_path / "barrier")
    try:
        # Four trials that only finish once all four train at the same time: both GPUs full, none
        # idle while a trial waits; six more behind them, each waiting for a place.
        together = [gpu_task(tmp_path, f"together{i}", {"barrier": barrier, "parties": 4, "name": str(i)}) for i in range(4)]
        behind = [gpu_task(tmp_path, f"behind{i}", {"sleep": 0.2, "lr": 0.01 * (i + 1)}) for i in range(6)]
        with LiveWorkers() as seen:
            for job in [jobs.submit(pool.run, t) for t in together + behind]:
                job.result()
        records = [metrics(t) for t in together + behind]
        assert {r["status"] for r in records} == {"ok"}
        assert sorted(metrics(t)["cuda_visible_devices"] for t in together) == ["0", "0", "1", "1"]
        assert {r["cuda_visible_devices"] for r in records} == {"0", "1"}
        for snapshot in seen.snapshots:
            assert set(snapshot.values()) <= {"0", "1"}, f"a live worker without a GPU of the pool: {snapshot}"
            assert max(gpu_loads(snapshot).values(), default=0) <= 2, f"more than two live workers on a GPU: {snapshot}"
        assert any(gpu_loads(snapshot) == {"0": 2, "1": 2} for snapshot in seen.snapshots)
    finally:
        pool.close()
        jobs.shutdown()
    assert pool.gpus.free == ("0", "1") and LiveWorkers.now() == {}

    # The same trials, each alone on its GPU: the same numbers, to the last bit.
    alone = WorkerPool(gpus=GPUS[:1], log_path=str(tmp_path / "alone.log"))
    try:
        for t in behind + together[:1]:
            again = {**t, "out_dir": t["out_dir"] + "-alone", "log": t["log"] + "-alone"}
            alone.run(again)
            assert metrics(again)["metrics"] == metrics(t)["metrics"] and metrics(again)["cuda_visible_devices"] == "0"
    finally:
        alone.close()


def test_a_trial_out_of_gpu_memory_beside_others_trains_again_alone_and_is_not_failed(tmp_path):
    pool = WorkerPool(gpus=GPUS[:2], trials_per_gpu=2, log_path=str(tmp_path / "workers.log"))
    jobs = ThreadPoolExecutor(4)
    barrier = str(tmp_path / "barrier")
    try:
        # Four at once, two on each GPU: the first of each pair to look sees its neighbour and runs
        # out of memory (the second too, unless the first's worker has gone by then); each such
        # trial trains again with a GPU to itself.
        greedy = [gpu_task(tmp_path, f"greedy{i}", {"barrier": barrier, "parties": 4, "name": str(i)},
                           model="oom_beside_a_neighbour") for i in range(4)]
        with LiveWorkers() as seen:
            notes = [job.result() for job in [jobs.submit(pool.run, t) for t in greedy]]
        for snapshot in seen.snapshots:
            assert max(gpu_loads(snapshot).values(), default=0) <= 2, f"more than two live workers on a GPU: {snapshot}"
        assert [metrics(t)["status"] for t in greedy] == ["ok"] * 4
        retried = [(t, said) for t, said in zip(greedy, notes) if said]
        assert 2 <= len(retried) <= 4 and all(len(said) <= 1 for said in notes)
        for t, said in retried:
            assert re.fullmatch(
                rf"greedy\d: the trial ran out of GPU memory beside other trials on its GPU \(ResourceExhaustedError: "
                rf"OOM when allocating tensor .*\); training it again alone on a GPU \(see {re.escape(t['log'])}\)", said[0]), said
            assert "kerasgrid: the trial ran out of GPU memory beside other trials on its GPU" in Path(t["log"]).read_text()
        assert not [t for t in greedy if "trial failed" in Path(t["log"]).read_text()]
        assert Path(pool.log_path).read_text().count("training it again alone on a GPU") == len(retried)
        assert pool.gpus.loads == {"0": 1, "1": 1}  # the last two alone workers, idle, share again
    finally:
        pool.close()
        jobs.shutdown()
    assert pool.gpus.free == ("0", "1") and LiveWorkers.now() == {}

    # Its result is the one it gets alone.
    alone = WorkerPool(gpus=GPUS[:1], log_path=str(tmp_path / "alone.log"))
    try:
        for t in greedy:
            again = {**gpu_task(tmp_path, f"alone-{Path(t['out_dir']).name}", t["params"]), "settings": t["settings"]}
            alone.run(again)
            assert metrics(again)["status"] == "ok" and metrics(again)["metrics"] == metrics(t)["metrics"]
    finally:
        alone.close()


def test_what_each_worker_sees(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # the snakemake process's own
    pool = WorkerPool(gpus=("0", "1"))
    try:
        # A job that asks for no GPU gets none, so that it takes no GPU memory from the others.
        none = gpu_task(tmp_path, "none", {}, gpus=0, model="sequential")
        pool.run(none)
        assert metrics(none)["cuda_visible_devices"] == "" and metrics(none)["devices"] == ["/device:CPU:0"]
        both = gpu_task(tmp_path, "both", {}, gpus=2, model="sequential")
        pool.run(both)
        assert metrics(both)["cuda_visible_devices"] == "0,1"
        # The idle two-GPU worker holds both GPUs: a one-GPU job ends it first, then takes one.
        one = gpu_task(tmp_path, "one", {}, gpus=1, model="sequential")
        pool.run(one)
        assert metrics(one)["cuda_visible_devices"] == "0"
        assert metrics(both)["pid"] not in LiveWorkers.now()
        assert set(LiveWorkers.now().values()) == {"", "0"}
    finally:
        pool.close()

    # Without GPUs to share out (a machine without any), a worker's environment is ours.
    plain = WorkerPool()
    try:
        inherited = gpu_task(tmp_path, "inherited", {}, gpus=0, model="sequential")
        plain.run(inherited)
        assert metrics(inherited)["cuda_visible_devices"] == "7"
    finally:
        plain.close()


def plan_resources(output: str) -> dict[str, set[str]]:
    """The `resources:` line of each job of a dry run, by rule."""
    found = {}
    for block in re.split(r"^(?=(?:local)?rule \w+:)", output, flags=re.M):
        rule, resources = re.match(r"(?:local)?rule (\w+):", block), re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if rule and resources:
            found.setdefault(rule.group(1), set()).add(resources.group(1))
    return found


def test_a_workstation_sweep_trains_each_trial_on_a_gpu_of_its_own(workflow, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two "GPUs": TensorFlow finds none and uses the CPU
    config = tiny_config()
    # A train job's console entry is its message ("Model 1 of 4: ..."), so best_model, which asks
    # what train asks (trial_gpus), shows the plan's resources; the run below shows train's.
    planned = plan_resources(workflow.sweep(config, "--dry-run").output)
    assert planned["best_model"] == {"tmpdir=/tmp, gpu=1"}

    too_many = workflow.sweep(config, "--resources", "gpu=3", check=False)
    assert too_many.returncode != 0 and not workflow.path("results").exists()
    assert ("--resources gpu=3 (on the command line or under `resources:` in a profile) lets Snakemake train on 3 GPUs "
            "at once, but kerasgrid sees 2 on this machine (CUDA_VISIBLE_DEVICES='0,1'). Set gpu=2 or less") in too_many.output

    workflow.sweep(config, "--resources", "gpu=2")
    records = [json.loads(p.read_text()) for p in workflow.root.glob("results/trials/*/metrics.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    assert {r["cuda_visible_devices"] for r in records} == {"0", "1"}  # two at a time, one GPU each
    # The winner is restored from its state; without one it is retrained, on a GPU of its own too.
    winner = yaml.safe_load(workflow.path("results/best_model.yaml").read_text())
    assert winner["how"] == "restored"
    remove_state(workflow.path(f"results/trials/{winner['trial_id']}"))
    workflow.path("results/best_model.yaml").unlink()
    workflow.sweep(config, "--resources", "gpu=2")
    retrain = json.loads(next(workflow.root.glob("results/best_model/*/metrics.json")).read_text())
    assert retrain["cuda_visible_devices"] in {"0", "1"}


def test_without_gpus_a_trial_asks_for_none_and_asking_for_one_is_an_error(workflow, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    config = tiny_config(grid={"lr": [0.01], "act_in": ["relu"], "act_out": ["sigmoid"], "loss": ["mean_squared_error"]})
    assert plan_resources(workflow.sweep(config, "--dry-run").output)["best_model"] == {"tmpdir=/tmp, gpu=0"}
    # A train job shows its message, not its resources: what it asks for shows in what it does.
    ranking = ("results/leaderboard.tsv", "--cores", "2", "--configfile", str(workflow.write_config(config)))
    workflow.run(*ranking)
    (done,) = [json.loads(p.read_text()) for p in workflow.root.glob("results/trials/*/metrics.json")]
    assert done["status"] == "ok" and done["cuda_visible_devices"] == ""  # ours, untouched

    config["grid"]["lr"] = [0.02]
    workflow.write_config(config)
    asked = workflow.run(*ranking, "--set-resources", "train:gpu=1", check=False)
    assert asked.returncode != 0 and len(list(workflow.root.glob("results/trials/*/metrics.json"))) == 1
    assert ("each train job asks for 1 GPU (its `gpu` resource: `set-resources` in a profile or on the command line), "
            "but kerasgrid sees 0 on this machine (CUDA_VISIBLE_DEVICES='')") in asked.output


def test_trials_per_gpu_from_the_command_line_counts_places_on_the_gpus(workflow, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    config = tiny_config()
    packed = ("--config", "gpus={trials_per_gpu: 2, memory_limit_mb: null}")
    planned = plan_resources(workflow.sweep(config, "--dry-run", "--resources", "gpu=4", *packed).output)
    assert planned["best_model"] == {"tmpdir=/tmp, gpu=1"}  # one place on a GPU
    too_many = workflow.sweep(config, "--dry-run", "--resources", "gpu=5", *packed, check=False)
    assert too_many.returncode != 0
    assert ("--resources gpu=5 (on the command line or under `resources:` in a profile) lets Snakemake train 5 trials "
            "on GPUs at once, but with gpus.trials_per_gpu 2 the 2 GPUs kerasgrid sees (CUDA_VISIBLE_DEVICES='0,1') "
            "hold 4. Set gpu=4 or less") in too_many.output
    mirrored = workflow.sweep({**config, "distribute": {"strategy": "mirrored"}}, "--dry-run", *packed, check=False)
    assert mirrored.returncode != 0 and "gpus.trials_per_gpu is 2, but distribute.strategy is 'mirrored'" in mirrored.output
