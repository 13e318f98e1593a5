"""eucgate.v1.PolicyService: the active bundle or any stored one by digest, and
reloading the active one on request.

A reload reads only the configured file and switches only to a bundle a policy-admin
key signed, so a caller can make the service re-read its file, never load other policy.
The access table lets auditor, policy-admin and operator call GetBundle; the bundle's
bytes (its licensed importers, quotas and screening lists) go to auditor and
policy-admin only, checked here because the table is per method.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Protocol

import grpc
from eucgate_client.dsse import Envelope, EnvelopeError
from eucgate_client.v1 import policy_service_pb2 as policy_pb2
from eucgate_client.v1 import policy_service_pb2_grpc as policy_grpc
from google.protobuf import timestamp_pb2

from eucgate.api.access import Access, Role
from eucgate.api.status import rpc_handler
from eucgate.errors import InvalidSubmission, NotFound, PermissionDenied
from eucgate.gate import ActiveBundle
from eucgate.policysource import Reloader


class StoredBundles(Protocol):
    """What GetBundle reads of the store: every bundle ever used, by digest."""

    def get_bundle(self, digest: str) -> bytes | None: ...


DIGEST = re.compile(r"[0-9a-f]{64}")
CONTENT_ROLES = frozenset({Role.AUDITOR, Role.POLICY_ADMIN})


def active_bundle_pb(active: ActiveBundle) -> policy_pb2.ActiveBundle:
    loaded_at = timestamp_pb2.Timestamp()
    loaded_at.FromDatetime(active.loaded_at)
    return policy_pb2.ActiveBundle(
        digest=active.bundle.digest, name=active.bundle.name, loaded_at=loaded_at
    )


class PolicyServicer(policy_grpc.PolicyServiceServicer):
    """Serves GetBundle and ReloadBundle over one `Reloader`, the store's bundles and
    the bundle file the service loads (`bundle_path`, for the signed envelope)."""

    def __init__(
        self,
        reloader: Reloader,
        bundles: StoredBundles | None = None,
        access: Access | None = None,
        bundle_path: Path | None = None,
    ) -> None:
        self._reloader = reloader
        self._bundles = bundles
        self._access = access
        self._bundle_path = bundle_path

    @rpc_handler
    def GetBundle(
        self, request: policy_pb2.GetBundleRequest, context: grpc.ServicerContext
    ) -> policy_pb2.GetBundleResponse:
        active = self._reloader.gate.active
        digest = request.digest or active.bundle.digest
        if not DIGEST.fullmatch(digest):
            raise InvalidSubmission(
                "digest must be 64 lowercase hex characters (a SHA-256)",
                reason="BUNDLE_DIGEST_INVALID",
                field="digest",
            )
        if request.include_content:
            self._check_content_role(context)
        if digest == active.bundle.digest:
            response = policy_pb2.GetBundleResponse(bundle=active_bundle_pb(active), active=True)
            canonical = active.bundle.canonical()
        else:
            stored = None if self._bundles is None else self._bundles.get_bundle(digest)
            if stored is None:
                raise NotFound(
                    f"the service holds no bundle with digest {digest}",
                    reason="BUNDLE_NOT_FOUND",
                    field="digest",
                )
            canonical = stored
            response = policy_pb2.GetBundleResponse(
                bundle=policy_pb2.ActiveBundle(digest=digest, name=_name(stored))
            )
        if request.include_content:
            response.canonical_bundle = canonical
            response.signed_bundle = self._signed(digest)
        return response

    @rpc_handler
    def ReloadBundle(
        self, request: policy_pb2.ReloadBundleRequest, context: grpc.ServicerContext
    ) -> policy_pb2.ReloadBundleResponse:
        previous, active = self._reloader.reload(trigger="rpc")
        return policy_pb2.ReloadBundleResponse(
            bundle=active_bundle_pb(active), previous_digest=previous.bundle.digest
        )

    def _check_content_role(self, context: grpc.ServicerContext) -> None:
        if self._access is None:
            return  # a servicer built without access control (tests of the servicer)
        caller = self._access.caller(context)  # anonymous holds every role (insecure)
        if caller is not None and caller.roles & CONTENT_ROLES:
            return
        raise PermissionDenied(
            "a bundle's content is for the auditor and policy-admin roles; this caller "
            "may read its digest and name only",
            reason="ROLE_NOT_ALLOWED",
        )

    def _signed(self, digest: str) -> bytes:
        """The bundle file's bytes when it is the DSSE envelope of `digest`, else b""."""
        if self._bundle_path is None:
            return b""
        try:
            data = self._bundle_path.read_bytes()
            envelope = Envelope.from_json(data)
        except (OSError, EnvelopeError):
            return b""
        return data if hashlib.sha256(envelope.payload).hexdigest() == digest else b""


def _name(canonical: bytes) -> str:
    try:
        doc = json.loads(canonical)
    except ValueError:
        return ""
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) else ""
