"""Entry point the Pulumi CLI runs: registers the rules of ``agentry_policies`` as a policy pack.

Constructing ``PolicyPack`` starts the analyzer's gRPC server and blocks forever, so this file
only registers; the rules and their tests live in ``agentry_policies``.
"""

from pulumi_policy import PolicyPack

from agentry_policies import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL, PACK_NAME

PolicyPack(
    name=PACK_NAME,
    enforcement_level=PACK_ENFORCEMENT_LEVEL,
    policies=list(ALL_POLICIES),
)
