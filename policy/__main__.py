"""Entry point of the policy pack: `pulumi preview --policy-pack policy`.

The Pulumi CLI runs this directory (`python -m pulumi.policy <engine> .`, which executes
this file with the pack's directory on `sys.path`), so the rules are imported as a
sibling module. Constructing the `PolicyPack` starts the analyzer's gRPC server and blocks; that
is why it happens here and nowhere else.
"""

from pulumi_policy import PolicyPack
from rules import ENFORCEMENT_LEVEL, PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, enforcement_level=ENFORCEMENT_LEVEL, policies=POLICIES)
