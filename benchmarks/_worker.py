"""Run a benchmark script's measurement in a process of its own.

The OpenMP runtime reads ``OMP_NUM_THREADS`` once, when it starts, so each
thread count gets a fresh interpreter: the script is started again with
``--worker`` and its other arguments, and prints its result as JSON on its
last line.
"""

import json
import os
import subprocess
import sys


def run_worker(script, n_threads):
    """Run ``script --worker`` with this process's arguments on ``n_threads``
    OpenMP threads; return the JSON value it printed last."""
    env = dict(os.environ, OMP_NUM_THREADS=str(n_threads))
    cmd = [sys.executable, script, "--worker"] + [
        a for a in sys.argv[1:] if a != "--worker"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])
