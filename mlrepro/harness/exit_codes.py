"""Exit codes of ``mlrepro-harness``. The Kubernetes Job's podFailurePolicy uses EXIT_BAD_SPEC."""

EXIT_VALID = 0          # every run VALID (accuracy mode: accuracy computed)
EXIT_RUNTIME = 1        # the harness crashed or the environment failed (e.g. GPU asked for, none visible)
EXIT_BAD_SPEC = 3       # invalid run spec / configuration (also: results not writable): retrying cannot help (podFailurePolicy FailJob)
EXIT_INVALID = 4        # LoadGen reported INVALID for at least one run
EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM

NAMES = {
    EXIT_VALID: "VALID",
    EXIT_RUNTIME: "RUNTIME_FAILURE",
    EXIT_BAD_SPEC: "BAD_SPEC",
    EXIT_INVALID: "INVALID",
    EXIT_INTERRUPTED: "INTERRUPTED",
}
