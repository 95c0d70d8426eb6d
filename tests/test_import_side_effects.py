"""Importing lit_gen changes nothing in the process environment; setting a module up for a run may."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_importing_lit_gen_leaves_the_environment_alone() -> None:
    code = ("import os, json; before = dict(os.environ); import lit_gen.models, lit_gen.cli, lit_gen.data; "
            "after = dict(os.environ); print(json.dumps(sorted(k for k in set(before) | set(after) "
            "if before.get(k) != after.get(k))))")
    env = {**os.environ, "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    changed = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in changed, changed
