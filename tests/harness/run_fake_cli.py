"""``python run_fake_cli.py ARGS``: mlrepro-harness with the fake workloads registered (for subprocess tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import fake_workloads

fake_workloads.install()

from mlrepro.harness.main import main

raise SystemExit(main(sys.argv[1:]))
