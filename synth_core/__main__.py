"""``python -m synth_core`` (and the ``synth-draw`` script): the command line (``synth_core.cli``),
ended without Python's slow teardown."""

import signal
import sys

from .interrupts import exit_code, exit_now


def run() -> None:
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C before the run's own handlers are in place
        print("synth_core: error: interrupted before the run started: nothing was written", file=sys.stderr)
        code = exit_code(signal.SIGINT)
    exit_now(code)


if __name__ == "__main__":
    run()
