"""`make oldest`: the default sweep (config.yaml) on the oldest versions pyproject.toml allows, run by
the Python of the environment `make oldest` installed them into (no pytest there: this script checks).

Every trial must finish ok with a real validation loss (Keras 3.2-3.6 report 0 on kerasgrid's
validation data, and 3.1 NaN), on exactly the lower ends of keras and tensorflow.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from declared import REPO, lower_ends

WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "scripts", "examples", "profiles"]


def main() -> None:
    oldest = dict(line.split("==") for line in lower_ends("tensorflow"))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name in WORKFLOW_FILES:
            (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, root / name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
        result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=root, env=env,
                                capture_output=True, text=True, timeout=1800)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        print("\n".join(result.stdout.splitlines()[-2:]))
        records = [json.loads(path.read_text()) for path in sorted(root.glob("results/trials/*/metrics.json"))]
        assert records, output
        for record in records:
            value = record["objective"]["value"]
            assert record["status"] == "ok" and math.isfinite(value) and value > 0, record
            versions = record["versions"]
            for name in ("keras", "tensorflow"):
                assert versions[name].startswith(oldest[name]), (name, versions[name], oldest[name])
        print(f"{len(records)} trials ok on " + ", ".join(f"{k} {v}" for k, v in sorted(records[0]["versions"].items())))


if __name__ == "__main__":
    main()
