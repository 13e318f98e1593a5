"""eucgate.v1.PolicyService: the active bundle, and reloading it on request.

A reload reads only the configured file and switches only to a bundle a policy-admin
key signed, so a caller can make the service re-read its file, never load other policy.
Once roles exist, this service is for the policy-admin role only.
"""

from __future__ import annotations

import grpc
from eucgate_client.v1 import policy_service_pb2 as policy_pb2
from eucgate_client.v1 import policy_service_pb2_grpc as policy_grpc
from google.protobuf import timestamp_pb2

from eucgate.api.status import rpc_handler
from eucgate.gate import ActiveBundle
from eucgate.policysource import Reloader


def active_bundle_pb(active: ActiveBundle) -> policy_pb2.ActiveBundle:
    loaded_at = timestamp_pb2.Timestamp()
    loaded_at.FromDatetime(active.loaded_at)
    return policy_pb2.ActiveBundle(
        digest=active.bundle.digest, name=active.bundle.name, loaded_at=loaded_at
    )


class PolicyServicer(policy_grpc.PolicyServiceServicer):
    """Serves GetBundle and ReloadBundle over one `Reloader`."""

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader

    @rpc_handler
    def GetBundle(
        self, request: policy_pb2.GetBundleRequest, context: grpc.ServicerContext
    ) -> policy_pb2.GetBundleResponse:
        return policy_pb2.GetBundleResponse(bundle=active_bundle_pb(self._reloader.gate.active))

    @rpc_handler
    def ReloadBundle(
        self, request: policy_pb2.ReloadBundleRequest, context: grpc.ServicerContext
    ) -> policy_pb2.ReloadBundleResponse:
        previous, active = self._reloader.reload(trigger="rpc")
        return policy_pb2.ReloadBundleResponse(
            bundle=active_bundle_pb(active), previous_digest=previous.bundle.digest
        )
