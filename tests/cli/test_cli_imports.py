"""`mlrepro --help` and `mlrepro generate` must not import the docker or kubernetes clients."""

import json
import subprocess
import sys

PROBE = """
import sys, json
from typer.testing import CliRunner
from mlrepro.cli.main import app
runner = CliRunner()
args = json.loads(sys.argv[1])
result = runner.invoke(app, args)
heavy = sorted(m for m in ("docker", "kubernetes", "onnxruntime", "torch", "mlperf_loadgen") if m in sys.modules)
print(json.dumps({"exit": result.exit_code, "heavy": heavy}))
"""


def probe(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_no_heavy_client():
    result = probe(["--help"])
    assert result == {"exit": 0, "heavy": []}


def test_generate_imports_no_engine_or_cluster_client(tmp_path):
    result = probe(["generate", "-p", "nvidia-gpu", "-o", str(tmp_path / "out")])
    assert result["exit"] == 0
    assert "docker" not in result["heavy"] and "kubernetes" not in result["heavy"]
