"""``python -m agent_continuity.hooks.run AGENT``: the hook, run as a module.

The hook itself is :func:`agent_continuity.hooks.spool.main`; the settings
``continuity hooks install`` writes run that file as a script instead
(``python -I -S .../spool.py AGENT``), which skips ``site`` and this
package's imports. ``--ingest ROOT`` is the detached ingester a recording
hook starts.
"""

from __future__ import annotations

import sys

from agent_continuity.hooks.spool import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
