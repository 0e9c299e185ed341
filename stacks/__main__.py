"""What ``pulumi up`` runs (``Pulumi.yaml``: ``main: stacks/``)."""

from agentry_stacks.program import main

main()
