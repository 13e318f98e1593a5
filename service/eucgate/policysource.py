"""Where the server's policy bundle comes from, at start and on every reload.

`PolicySource` is the configured signed-bundle file plus the policy-admin keys read at
start (a reload never changes who may sign), and the CRL directory whose CRLs join the
bundle's (see `eucgate.crldir`). `Reloader` re-reads the file, verifies
signature and content, stores the bundle by digest and switches the gate to it; when
anything fails, the active bundle keeps serving and the error says why.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from eucgate.config import Settings
from eucgate.core.bundle import Bundle
from eucgate.core.signedbundle import AdminPublicKey, admin_public_key, open_signed_bundle
from eucgate.crldir import with_directory_crls
from eucgate.errors import BundleError, ConfigError, EucgateError
from eucgate.gate import ActiveBundle, Gate

log = structlog.get_logger("eucgate.policy")


@dataclass(frozen=True)
class PolicySource:
    """A signed-bundle file and the policy-admin keys whose signature on it counts."""

    path: Path
    admin_keys: tuple[AdminPublicKey, ...]
    crl_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicySource:
        """Raises ConfigError when no admin key is configured or one is unusable."""
        return cls(
            settings.bundle_path, load_admin_keys(settings.policy_admin_keys), settings.crl_dir
        )

    def read(self) -> Bundle:
        """Read and verify the bundle file now, with the CRL directory's CRLs added.

        Raises BundleError: BUNDLE_UNREADABLE when the file cannot be read, otherwise
        as `core.signedbundle.open_signed_bundle`; ConfigError (BUNDLE_CRL_DIR_UNREADABLE) when
        the CRL directory cannot be listed.
        """
        bundle = self._read_signed()
        return bundle if self.crl_dir is None else with_directory_crls(bundle, self.crl_dir)

    def _read_signed(self) -> Bundle:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise BundleError(
                f"cannot read the bundle {self.path}: {exc.strerror or exc}",
                reason="BUNDLE_UNREADABLE",
            ) from None
        return open_signed_bundle(data, str(self.path), self.admin_keys)


def load_admin_keys(paths: Sequence[Path]) -> tuple[AdminPublicKey, ...]:
    """The policy-admin public keys; raises ConfigError (POLICY_ADMIN_KEY_INVALID) when
    none is configured or one cannot be read or is of a kind not allowed."""
    if not paths:
        raise ConfigError(
            "no policy_admin_keys configured: the service loads a bundle only when a "
            "policy-admin key signed it (`eucgate keygen` writes policy-admin.pub.pem)",
            reason="POLICY_ADMIN_KEY_INVALID",
        )
    keys = []
    for path in paths:
        try:
            keys.append(admin_public_key(path.read_bytes(), str(path)))
        except OSError as exc:
            raise ConfigError(
                f"cannot read the policy-admin key {path}: {exc.strerror or exc}",
                reason="POLICY_ADMIN_KEY_INVALID",
            ) from None
        except ValueError as exc:
            raise ConfigError(str(exc), reason="POLICY_ADMIN_KEY_INVALID") from None
    return tuple(keys)


class Reloader:
    """Reloads the gate's bundle from its source; one reload at a time."""

    def __init__(self, source: PolicySource, gate: Gate) -> None:
        self._source = source
        self._gate = gate
        self._lock = threading.Lock()

    @property
    def gate(self) -> Gate:
        return self._gate

    def reload(self, trigger: str) -> tuple[ActiveBundle, ActiveBundle]:
        """Switch to the bundle the file holds now; returns (previous, active).

        The same bundle again changes nothing. Raises BundleError (the active bundle
        keeps serving, and the reason is logged) or StoreError (not stored, not switched).
        """
        with self._lock:
            previous = self._gate.active
            try:
                bundle = self._source.read()
                active = self._gate.replace_bundle(bundle)
            except EucgateError as exc:
                log.warning(
                    "bundle_reload_refused",
                    trigger=trigger,
                    reason=exc.reason,
                    error=str(exc),
                    active_digest=previous.bundle.digest,
                )
                raise type(exc)(
                    f"{exc} (still serving bundle {previous.bundle.digest})",
                    reason=exc.reason,
                    field=exc.field,
                ) from None
            log.info(
                "bundle_reloaded",
                trigger=trigger,
                bundle=bundle.name,
                bundle_digest=bundle.digest,
                previous_digest=previous.bundle.digest,
                changed=active is not previous,
            )
            return previous, active
