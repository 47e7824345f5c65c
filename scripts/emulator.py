"""Start moto's standalone server (the AWS emulator used for tests and the demo).

One fidelity fix is applied before it starts: moto leaves an updated AgentCore runtime in
UPDATING forever, while AgentCore moves it to READY once the new version is live. The
transition UPDATING -> READY is added so that an update can be waited on like a create.

Usage: python scripts/emulator.py --port PORT [--host 127.0.0.1]
"""

import sys

from moto.bedrockagentcorecontrol import models as agentcore

_original_init = agentcore.AgentRuntime.__init__


def _init_with_update_transition(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self._transitions = [("CREATING", "READY"), ("UPDATING", "READY")]


agentcore.AgentRuntime.__init__ = _init_with_update_transition

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
