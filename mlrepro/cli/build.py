"""``mlrepro build | push | images | base-images``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    OutputFormat,
    OutputOpt,
    OverlayOpt,
    ProfileOpt,
    SetOpt,
    cli_errors,
    console,
    fail,
    print_data,
    resolve,
)


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("push")(push)
    app.command("images")(images)
    app.command("base-images")(base_images)


def _read_password(password_stdin: bool, username: Optional[str]) -> Optional[str]:
    if not password_stdin:
        return None
    if username is None:
        raise fail("--password-stdin needs --username", 2)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise fail("--password-stdin: no password on standard input", 2)
    return password


def build(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
          push_: bool = typer.Option(False, "--push", help="Push after building."),
          registry: Optional[str] = typer.Option(None, "--registry", help="Registry/namespace to push to, "
                                                 "e.g. 127.0.0.1:5001/bench (default: the profile's)."),
          username: Optional[str] = typer.Option(None, "--username", help="Registry user (default: docker config)."),
          password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the registry password from stdin."),
          no_cache: bool = typer.Option(False, "--no-cache", help="Ignore the engine's layer cache."),
          force: bool = typer.Option(False, "--force", help="Build even if the content-tagged image exists."),
          online: bool = typer.Option(False, "--online", help="Let the builder stage use the package index "
                                      "instead of a host wheelhouse (needs --ca-bundle behind TLS interception)."),
          ca_bundle: Optional[Path] = typer.Option(None, "--ca-bundle", help="PEM CA bundle for the builder stage."),
          context_dir: Optional[Path] = typer.Option(None, "--context-dir", help="Keep the build context here."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every build step's output."),
          output: OutputFormat = OutputOpt) -> None:
    """Build the profile's image (content-hash tag; unchanged inputs are not rebuilt), optionally push it.

    Example: mlrepro build -p arm64-cpu -f air-gapped --push --registry 127.0.0.1:5001/bench
    """
    with cli_errors():
        from mlrepro.image.builder import BuildOptions, build_image
        from mlrepro.image.progress import BuildRenderer

        password = _read_password(password_stdin, username)
        resolved = resolve(profile, overlays, sets)
        options = BuildOptions(wheelhouse=not online, ca_bundle=ca_bundle, nocache=no_cache, force=force,
                               context_dir=context_dir)
        result = build_image(resolved, options, on_event=BuildRenderer(verbose=verbose))
        data = {"ref": result.ref, "image_id": result.image_id, "platform": result.platform,
                "content_hash": result.content_hash, "skipped": result.skipped,
                "seconds": round(result.seconds, 2), "size_bytes": result.size_bytes, "steps": result.steps,
                "cached_steps": result.cached_steps, "compiled": list(result.compiled)}
        if push_:
            from mlrepro.image.images import push_image
            from mlrepro.image.progress import PushRenderer

            pushed = push_image(result.ref, registry=registry, username=username, password=password,
                                on_event=PushRenderer())
            data |= {"pushed": pushed.ref, "digest": pushed.digest, "digest_ref": pushed.digest_ref}
        if output != OutputFormat.table:
            print_data(data, output)
            return
        c = console()
        state = "up to date" if result.skipped else f"built in {result.seconds:.1f} s " \
            f"({result.cached_steps}/{result.steps} steps cached)"
        c.print(f"[green]{result.ref}[/] {result.platform} {result.size_bytes / 2**20:.0f} MiB: {state}")
        if push_:
            c.print(f"pushed {data['pushed']} → {data['digest_ref']}")


def push(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
         registry: Optional[str] = typer.Option(None, "--registry", help="Registry/namespace, e.g. 127.0.0.1:5001/bench."),
         username: Optional[str] = typer.Option(None, "--username", help="Registry user (default: docker config)."),
         password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the registry password from stdin."),
         output: OutputFormat = OutputOpt) -> None:
    """Push the profile's built image and record its digest for reproducibility; prints each layer's progress.

    Example: echo "$PASS" | mlrepro push -p x86-cpu --registry 127.0.0.1:5001/bench --username ci --password-stdin
    """
    with cli_errors():
        from mlrepro.image.builder import planned_image
        from mlrepro.image.images import push_image
        from mlrepro.image.progress import PushRenderer

        password = _read_password(password_stdin, username)
        resolved = resolve(profile, overlays, sets)
        pushed = push_image(planned_image(resolved).ref, registry=registry, username=username, password=password,
                            on_event=PushRenderer())
        if output != OutputFormat.table:
            print_data({"ref": pushed.ref, "digest": pushed.digest, "digest_ref": pushed.digest_ref}, output)
        else:
            console().print(f"pushed {pushed.ref} → {pushed.digest_ref}")


def images(profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Only this profile's images."),
           output: OutputFormat = OutputOpt) -> None:
    """List images built by mlrepro: profile, platform, size, tag, digest.

    Example: mlrepro images --output json
    """
    with cli_errors():
        from mlrepro.image.images import list_images

        found = list_images(profile=profile)
        rows = [{"profile": i.profile, "platform": i.platform, "size_mib": round(i.size_bytes / 2**20, 1),
                 "tag": i.tag or "", "tags": list(i.tags), "digest": i.digests[0] if i.digests else "", "id": i.image_id[:19],
                 "created": i.created, "content_hash": i.content_hash, "image_inputs": i.image_inputs}
                for i in found]
        if output != OutputFormat.table:
            print_data(rows, output)
            return
        from mlrepro.cli.common import Column, fitted_table

        c = console()
        columns = [Column("profile"), Column("platform", keep=2), Column("size", keep=3, right=True), Column("tag"),
                   Column("digest", keep=1)]
        c.print(fitted_table(c, columns, [[r["profile"], r["platform"], f"{r['size_mib']:.0f} MiB", r["tag"] or "-",
                                           r["digest"] or "-"] for r in rows]))


def base_images(platform: Optional[List[str]] = typer.Option(None, "--platform", help="linux/amd64 and/or "
                                                             "linux/arm64 (default: both)."),
                cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Where debootstrap layers are "
                                                         "cached between runs."),
                force: bool = typer.Option(False, "--force", help="Re-run debootstrap even if cached."),
                output: OutputFormat = OutputOpt) -> None:
    """Create local Debian bases (amd64, arm64) for air-gapped builds; use them with `-f air-gapped`.

    Status per image: exists (already there), loaded (from the cached layer), created (debootstrap ran).

    Example: mlrepro base-images && mlrepro build -p arm64-cpu -f air-gapped
    """
    with cli_errors():
        from mlrepro.image.base_images import DEFAULT_CACHE_DIR, PLATFORMS, ensure_base_images

        for p in platform or []:
            if p not in PLATFORMS:
                raise fail(f"--platform: {p!r} is not one of {', '.join(PLATFORMS)}", 2)
        log = console(stderr=True)
        results = ensure_base_images(tuple(platform or PLATFORMS), cache_dir or DEFAULT_CACHE_DIR, force=force,
                                     log=lambda m: log.print(f"[dim]{m}[/]"))
        rows = [{"ref": r.tag, "platform": r.platform, "image_id": r.image_id, "size_bytes": r.size_bytes,
                 "status": r.status, "seconds": round(r.seconds, 2)} for r in results]
        if output != OutputFormat.table:
            print_data(rows, output)
            return
        for r in results:
            console().print(f"{r.tag} ({r.platform}): {r.status}, {r.size_bytes / 2**20:.0f} MiB")
