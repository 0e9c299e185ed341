"""What ``pulumi up`` runs (``Pulumi.yaml``: ``main: stacks/``)."""

from agentry_stacks.deploy.program import main

main()
