"""Start moto's standalone server (the AWS emulator used for tests and the demo).

One fidelity fix is applied before it starts: moto leaves an updated AgentCore runtime in
UPDATING forever, while AgentCore moves it to READY once the new version is live. The
transition UPDATING -> READY is added so that an update can be waited on like a create.

Usage: python scripts/emulator.py [--exit-with PID] --port PORT [--host 127.0.0.1]

With --exit-with PID the emulator exits when process PID does (test harnesses use this so
that no emulator outlives its test run).
"""

import os
import sys
import threading
import time

from moto.bedrockagentcorecontrol import models as agentcore

_original_init = agentcore.AgentRuntime.__init__


def _init_with_update_transition(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self._transitions = [("CREATING", "READY"), ("UPDATING", "READY")]


agentcore.AgentRuntime.__init__ = _init_with_update_transition

def _exit_with(pid: int) -> None:
    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except OSError:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    from moto.server import main

    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--exit-with":
        _exit_with(int(args[1]))
        args = args[2:]
    main(args)
