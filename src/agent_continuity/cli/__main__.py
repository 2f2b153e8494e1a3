"""``python -m agent_continuity.cli`` runs the command line."""

from agent_continuity.cli.main import main

main()
