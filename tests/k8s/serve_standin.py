"""Run the API stand-in and its fake kubelet as a process of its own (benchmarks/k8s_sweep.py).

    python tests/k8s/serve_standin.py --claims DIR [--template RUN_DIR] [--tls DIR]

Prints ``{"url": ...}`` on one line (with ``--tls``: also ``"ca"``, the CA's PEM file, and the URL is https),
then serves until standard input closes. With ``--template``, every Job succeeds at once with a copy of that
harness run as its results; without, the real harness runs. ``--tls DIR``: a CA and server certificate are made
in DIR (standin_tls.py) and the API is served over https/wss only, as a real cluster's.
GET /standin/stats answers the watch connections opened per resource and the number of requests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubelet import FakeKubelet, from_template, harness_job  # noqa: E402
from standin import StandIn, StandInServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=Path, required=True)
    ap.add_argument("--template", type=Path)
    ap.add_argument("--tls", type=Path, help="make a CA and certificate here and serve https/wss")
    args = ap.parse_args()
    standin = StandIn(claims_root=args.claims)
    standin.requests_log = _Counter()
    tls = None
    if args.tls is not None:
        from standin_tls import make_tls

        tls = make_tls(args.tls)
    server = StandInServer(standin, tls=tls).start()
    scenario = from_template(args.template) if args.template else harness_job
    server.call(lambda: FakeKubelet(standin, lambda _job: scenario))
    print(json.dumps({"url": server.url, **({"ca": str(tls.ca)} if tls else {})}), flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()
    return 0


class _Counter(list):
    """The request log of a long benchmark: counted, not kept."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def append(self, _item: object) -> None:
        self.count += 1

    def __len__(self) -> int:
        return self.count


if __name__ == "__main__":
    sys.exit(main())
