"""TEST DOUBLE: the engine's real worker (``synth_core.worker.main``) around a fake method.

Used for bridge plumbing tests (crash, hang, cancel, garbage on stdout) that the real engine
cannot be made to do on demand. The mode comes from FAKE_WORKER_MODE:
  ok        run all steps, a snapshot every ``snapshot_every`` steps, then done
  crash     like ok, but die (exit code 3) in the step after the second in-run snapshot
  slow      0.1 s per step, honours the cancel line (done, cancelled)
  hang      like slow, but ignore cancel (tests the kill escalation)
  garbage   print a non-JSON line first, then behave like ok
  stages    ladders and keyed prompts (stage events, snapshots with frames), see fake_stages_run_job
"""

from __future__ import annotations

import os
import sys

from fake_engine import fake_run_job, fake_stages_run_job

from synth_core import worker


def main() -> int:
    mode = os.environ.get("FAKE_WORKER_MODE", "ok")
    if mode == "garbage":
        print("this is not JSON", flush=True)
    if mode == "stages":
        return worker.main(sys.stdin, sys.stdout, run_job=fake_stages_run_job())
    run = fake_run_job(delay=0.1 if mode in ("slow", "hang") else 0.0,
                       exit_after_snapshots=2 if mode == "crash" else None, ignore_cancel=mode == "hang")
    return worker.main(sys.stdin, sys.stdout, run_job=run)


if __name__ == "__main__":
    sys.exit(main())
