"""``python -m mlrepro.harness`` = ``mlrepro-harness``."""

from mlrepro.harness.main import main

raise SystemExit(main())
