"""Is the newest builder/deps stage image worth keeping? Rebuild time after a harness change, with and without.

The classic builder leaves the builder and deps stages' images untagged; their parent chains are the layer
cache of those stages. ``mlrepro.image.leftovers.builder_leftovers(keep_latest=True)`` keeps the newest of each
per profile and platform. This measures, on the real engine, what removing them too costs the next build:

  first       a build of a variant of the profile that no other image shares layers with past the bases:
              a unique ``image.user_uid`` (os, deps and runtime stages) and a unique CA bundle (the builder
              stage from its ``COPY ca-bundle.pem`` on) -- the engine here is shared, and other images' chains
              would otherwise serve as cache
  kept        rebuild after a harness-only change, the stage images kept               (baseline)
  pruned      the variant's builder/deps stage images removed, then another harness-only change

"pruned" is a lower bound: the builder's first steps (its apt layer, WORKDIR, ``COPY build_helper.py``) come
before anything unique, so other images keep them cached here; on a machine with only mlrepro's own images,
removing every builder image removes those too, and the next build redoes them as well.

Prints a table; writes benchmarks/results/prune_cache.json. Removes every image it made.

    python benchmarks/prune_cache.py [--profile x86-cpu] [--overlay air-gapped]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "prune_cache.json"
CA = Path("/etc/ssl/certs/ca-certificates.crt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="x86-cpu")
    parser.add_argument("--overlay", action="append", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    overlays = args.overlay if args.overlay is not None else ["air-gapped"]

    import docker

    from mlrepro.image import harness_wheel
    from mlrepro.image.builder import BuildOptions, build_image
    from mlrepro.image.engine import connect
    from mlrepro.image.leftovers import builder_leftovers, remove_images
    from mlrepro.image.progress import BuildEvent, StepFinished
    from mlrepro.profiles.loader import resolve_profile

    client = connect()
    uid = random.randint(20000, 60000)
    sets = [f"image.user_uid={uid}"]
    resolved = resolve_profile(args.profile, overlays, sets)
    hashes: set[str] = set()
    refs: list[str] = []

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "ca.pem"
        bundle.write_text((CA.read_text() if CA.is_file() else "-----BEGIN CERTIFICATE-----\nMIIB\n"
                           "-----END CERTIFICATE-----\n") + f"\n# prune_cache {time.time_ns()}\n")
        options = BuildOptions(ca_bundle=bundle)
        original = harness_wheel.harness_files

        def build(tag: str) -> tuple[float, Any, list[BuildEvent]]:
            probe = Path(tmp) / f"{tag}.py"
            probe.write_text(f"MARK = {time.time_ns()}\n")
            harness_wheel.harness_files = lambda: original() + [("mlrepro/harness/_prune_probe.py", probe)]
            events: list[BuildEvent] = []
            started = time.monotonic()
            result = build_image(resolved, options, client=client, on_event=events.append)
            seconds = time.monotonic() - started
            hashes.add(result.content_hash)
            refs.append(result.ref)
            run = sum(1 for e in events if isinstance(e, StepFinished) and not e.cached)
            print(f"{tag}: {seconds:.1f} s, {run} steps run", flush=True)
            return seconds, result, events

        try:
            first_s, _, _ = build("first")
            kept_s, _, _ = build("kept")
            mine = [x for x in builder_leftovers(client, keep_latest=False) if x.content_hash in hashes]
            removal = remove_images(client, [x.image_id for x in mine])
            print(f"removed {len(mine)} stage images, {removal.freed_bytes / 1e6:.0f} MB freed", flush=True)
            pruned_s, pruned, _ = build("pruned")
        finally:
            harness_wheel.harness_files = original
            for ref in refs:
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(ref)
            remove_images(client, [x.image_id for x in builder_leftovers(client, keep_latest=False)
                                   if x.content_hash in hashes])

    report = {
        "profile": args.profile, "overlays": overlays, "sets": sets, "platform": resolved.profile.platform,
        "host": {"machine": platform.machine(), "python": platform.python_version(),
                 "engine": client.version().get("Version")},
        "first_s": round(first_s, 1),
        "kept_s": round(kept_s, 1),
        "pruned_s": round(pruned_s, 1),
        "pruned_over_kept": round(pruned_s / kept_s, 1),
        "stage_images_removed": len(mine),
        "freed_mb": round(removal.freed_bytes / 1e6, 1),
        "pruned_steps_run": pruned.steps - pruned.cached_steps,
    }
    rows = [("first build of the variant", f"{first_s:.1f} s", ""),
            ("harness change, stage images kept", f"{kept_s:.1f} s", "baseline"),
            ("harness change, stage images removed", f"{pruned_s:.1f} s",
             f"{report['pruned_over_kept']}x (at least)"),
            ("space the removal freed", f"{removal.freed_bytes / 1e6:.0f} MB", f"{len(mine)} images")]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
