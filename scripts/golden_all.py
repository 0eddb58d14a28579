"""Regenerates every fixture of test/fixtures/models and test/fixtures/golden, then runs the self-checks.
    /usr/bin/python3 scripts/golden_all.py
Output is deterministic (seeded; byte-identical on re-runs with the same torch). Order matters: the golden
scripts read the model folders, and golden_prefs reads the adapter folder golden_lora writes.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = ["make_tiny_models.py", "golden_forward.py", "golden_lora.py", "golden_prefs.py", "golden_selfcheck.py"]

for step in STEPS:
    print(f"== {step}", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, step)], check=True)
