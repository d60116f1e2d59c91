"""The one place tests use names the Pulumi SDKs do not export: the policy analyzer's view.

Why: a policy pack runs only behind the Pulumi engine, which cannot be installed here.
`pulumi_policy` exports the pack's API (`PolicyPack`, the policies and their args) but
not what its analyzer does to the engine's properties before a rule sees them: unwrap
secrets and assets (`deserialize_properties`), then wrap the result so that reading a
value unknown at preview raises (`unknown_checking_proxy`). The rule tests and the mocked
stack (tests/infra/conftest.py) do the same, so a rule that passes here passes under
`pulumi preview`. The analyzer's gRPC messages (`pulumi.runtime.proto`, "for internal use
only") are what the engine sends the pack; tests/policy/test_pack_server.py speaks them
to the pack's own server.

What would replace it: a public in-process entry point of `pulumi_policy` that analyzes
resources as its server does (or a published test harness), and published Python stubs
of the analyzer protocol. Then this module goes, and tests/test_public_apis.py allows no
exception at all.
"""

from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

__all__ = [
    "SPECIAL_SECRET_SIG",
    "SPECIAL_SIG_KEY",
    "UNKNOWN_STRING_VALUE",
    "UnknownValueError",
    "analyzer_pb2",
    "analyzer_pb2_grpc",
    "deserialize_properties",
    "unknown_checking_proxy",
]
