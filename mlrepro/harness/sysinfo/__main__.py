"""``python -m mlrepro.harness.sysinfo``: print this machine's system description (JSON)."""

from mlrepro.harness.sysinfo import main

raise SystemExit(main())
