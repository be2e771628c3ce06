"""Launch overhead and container-vs-native throughput, in one run, on the local engine.

1. `mlrepro launch` wall time against `docker run` of the same image and run spec (target: at most 1.5 s extra).
2. Reference workload, Offline samples/s: in the container (`mlrepro launch`) against natively
   (`mlrepro run --target native`), same settings (target: container >= 95 % of native).

Needs a Docker engine and the local amd64 base (`mlrepro base-images`). Writes benchmarks/results/launch_overhead.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 3
# quick overlay: the harness calibrates the Offline target where it runs (the container, or natively)
PROFILE = ["-p", "x86-cpu", "-f", "air-gapped", "-f", "quick", "--scenario", "Offline", "--mode", "performance"]
SHORT = ["--set", "benchmark.settings.min_duration_ms=300"]
THROUGHPUT = ["--set", "benchmark.settings.min_duration_ms=5000"]
MLREPRO = [sys.executable, "-m", "mlrepro.cli.main"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def last_run(env: dict[str, str]) -> dict:
    out = subprocess.run(MLREPRO + ["runs", "--output", "json", "--limit", "1"], check=True, capture_output=True,
                         text=True, env=env)
    return json.loads(out.stdout)[0]


def main() -> int:
    from mlrepro.image.builder import build_image
    from mlrepro.profiles import resolve_profile
    from mlrepro.render.podspec import build_pod_spec
    from mlrepro.render.runspec import build_run_spec
    from mlrepro.runners.docker_config import docker_run_config, write_config_dir
    from mlrepro.runners.locations import HostDir

    docker_cli = shutil.which("docker")
    if docker_cli is None:
        print("launch_overhead: the docker CLI is needed for the `docker run` baseline", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="mlrepro-bench-"))
    env = {**os.environ, "MLREPRO_STATE_DIR": str(work / "state")}
    resolved = resolve_profile("x86-cpu", ["air-gapped", "quick"], [a for a in SHORT if a != "--set"])
    image = build_image(resolved).ref
    # --recalibrate: the baseline's spec carries no cached target, so both sides calibrate in the container
    launch = MLREPRO + ["launch", *PROFILE, "--image", image, "--recalibrate", *SHORT]

    # baseline: the same container, run by the docker CLI with the same mounts, user, limits and spec
    spec = build_run_spec(resolved, "Offline", "performance", run_id="bench-docker-run")
    cfg = docker_run_config(build_pod_spec(resolved, image, spec), write_config_dir(
        build_pod_spec(resolved, image, spec), work / "config"), HostDir(work / "results"))
    (work / "results").mkdir(mode=0o777)
    os.chmod(work / "results", 0o777)
    docker_run = [docker_cli, "run", "--rm", "--user", cfg.user, "--read-only", "--cap-drop", "ALL",
                  "--security-opt", "no-new-privileges:true", "--tmpfs", "/tmp", "--cpus", "2", "--memory", "2g",
                  "-v", f"{work / 'config'}:/config:ro", "-v", f"{work / 'results'}:/results",
                  "--entrypoint", cfg.entrypoint[0], image, *cfg.command]
    timed(docker_run, env)  # warm the page cache once
    baseline = [timed(docker_run, env) for _ in range(REPEATS)]
    launched = [timed(launch, env) for _ in range(REPEATS)]
    extra = statistics.median(launched) - statistics.median(baseline)

    # throughput: container vs native, same settings
    container, native = [], []
    for _ in range(REPEATS):
        subprocess.run(MLREPRO + ["launch", *PROFILE, "--image", image, *THROUGHPUT], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        container.append(last_run(env)["result"])
        subprocess.run(MLREPRO + ["run", *PROFILE, "--target", "native", "--no-collect", *THROUGHPUT], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        native.append(last_run(env)["result"])
    ratio = statistics.median(container) / statistics.median(native)
    result = {
        "image": image, "repeats": REPEATS,
        "docker_run_s": [round(x, 3) for x in baseline], "mlrepro_launch_s": [round(x, 3) for x in launched],
        "launch_extra_s": round(extra, 3), "launch_extra_target_s": 1.5,
        "container_samples_per_s": container, "native_samples_per_s": native,
        "container_vs_native": round(ratio, 3), "container_vs_native_target": 0.95,
    }
    print(f"{'':<34}{'median':>12}")
    print(f"{'docker run (same image + spec)':<34}{statistics.median(baseline):>10.2f} s")
    print(f"{'mlrepro launch':<34}{statistics.median(launched):>10.2f} s   extra {extra:+.2f} s (target <= 1.5 s)")
    print(f"{'Offline samples/s, native':<34}{statistics.median(native):>12,.0f}")
    print(f"{'Offline samples/s, container':<34}{statistics.median(container):>12,.0f}   ratio {ratio:.3f} "
          "(target >= 0.95)")
    out = Path(__file__).parent / "results" / "launch_overhead.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if extra <= 1.5 and ratio >= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
