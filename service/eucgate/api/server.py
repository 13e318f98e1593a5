"""Building, running and stopping the gRPC server.

Two listeners: the API port (mutual TLS, or plaintext only under an explicit `insecure`)
with the certificate, audit, policy, licence and review services, health and reflection,
every call checked by `access.AccessInterceptor`; and an optional plaintext
operations port with only grpc.health.v1, for Kubernetes' native gRPC probes. Prometheus
metrics (eucgate.metrics) are served over plain HTTP at `metrics_listen` when it is set.

The policy bundle is loaded only when a configured policy-admin key signed it; SIGHUP
(or PolicyService.ReloadBundle) reloads it, keeping the active one when the new one fails.

The store is the SQLite file in data_dir, or the PostgreSQL database that replicas share.
Readiness follows whether a write could commit now (`StoreReadiness`): health reports
NOT_SERVING while a probe of the store does not answer in time (a dead or silently
partitioned database, whose connections neither reset nor answer) and after commits
fail with none succeeding (a full disk, a lost lock), and SERVING again once the store
answers and commits, with no restart.

Unary calls and streams run on separate thread pools with their own limits
(`api.limits`), so open streams can never take the workers unary calls need.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import grpc
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from eucgate_client.tlog import WitnessVerifier
from eucgate_client.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    certificate_service_pb2,
    certificate_service_pb2_grpc,
    licence_service_pb2,
    licence_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
    review_service_pb2,
    review_service_pb2_grpc,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from eucgate.api import signals
from eucgate.api.access import Access, AccessInterceptor, AccessMap
from eucgate.api.audit import AuditServicer
from eucgate.api.licence import LicenceServicer
from eucgate.api.limits import Admission, AdmissionInterceptor
from eucgate.api.policy import PolicyServicer
from eucgate.api.review import ReviewServicer
from eucgate.api.servicer import CertificateServicer
from eucgate.config import Settings
from eucgate.errors import ConfigError, EucgateError
from eucgate.gate import Gate, utc_now
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.keyset import earlier_service_keys
from eucgate.log.witnessing import WitnessEndpoint, Witnessing
from eucgate.metrics import Metrics, MetricsServer, RpcMetricsInterceptor
from eucgate.policysource import PolicySource, Reloader
from eucgate.store import PoolSettings, Store, StoreLock, is_postgresql, open_store
from eucgate.store.sqlite import SQLITE_FILE

log = structlog.get_logger("eucgate.server")

# How often readiness asks the store whether it answers (each probe is bounded by
# `readiness_probe_timeout_seconds`).
STORE_CHECK_SECONDS = 1.0

SERVICE_NAME = certificate_service_pb2.DESCRIPTOR.services_by_name["CertificateService"].full_name
AUDIT_SERVICE_NAME = audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
POLICY_SERVICE_NAME = policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name
LICENCE_SERVICE_NAME = licence_service_pb2.DESCRIPTOR.services_by_name["LicenceService"].full_name
REVIEW_SERVICE_NAME = review_service_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name


class StoreReadiness:
    """Whether a write could commit now, asked once per check (one thread at a time).

    Not ready while a probe of the store (`Store.ping`) has not answered within
    `timeout` seconds: the probe runs on a thread of its own, so a connection that hangs
    (a silent partition) turns readiness NOT_SERVING instead of hanging the check, and
    no second probe starts while one hangs. Not ready either for `window` seconds after
    the store's writer failed a batch while committing none (a full disk, a lost lock:
    reads still answer, so the probe alone would say ready); a commit ends that at once,
    and so does the window's end, so that traffic can find out whether writes work again.
    """

    def __init__(
        self,
        store: Store,
        *,
        timeout: float,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._timeout = timeout
        self._window = window
        self._clock = clock
        self._pool = futures.ThreadPoolExecutor(1, thread_name_prefix="eucgate-store-probe")
        self._probe: futures.Future[None] | None = None
        self._probe_started = 0.0
        stats = store.stats()
        self._commits, self._failed = stats.commits, stats.failed_batches
        self._failed_at: float | None = None

    def problem(self) -> str:
        """ "" when a write could commit now, else why not (for the log)."""
        return self._probe_problem() or self._commit_problem()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _probe_problem(self) -> str:
        if self._probe is None or self._probe.done():
            self._probe = self._pool.submit(self._store.ping)
            self._probe_started = self._clock()
        try:
            self._probe.result(timeout=self._timeout)
        except futures.TimeoutError:
            waited = self._clock() - self._probe_started
            return f"the store has not answered a probe for {waited:.1f} s"
        except EucgateError as exc:
            return str(exc)
        except Exception as exc:  # a driver fault is still a store that does not answer
            return f"store probe failed: {exc.__class__.__name__}: {exc}"
        return ""

    def _commit_problem(self) -> str:
        stats = self._store.stats()
        now = self._clock()
        if stats.commits > self._commits:
            self._failed_at = None
        elif stats.failed_batches > self._failed:
            self._failed_at = now
        failures = stats.failed_batches - self._failed
        self._commits, self._failed = stats.commits, stats.failed_batches
        if self._failed_at is None:
            return ""
        if now - self._failed_at >= self._window:
            self._failed_at = None
            return ""
        return (
            f"store commits are failing ({failures or 'no'} new failures, no commit "
            f"since {now - self._failed_at:.1f} s ago)"
        )


@dataclass
class RunningServer:
    """A started server; `stop` is idempotent and safe from a signal handler's thread."""

    server: grpc.Server
    ops_server: grpc.Server | None
    health: health.HealthServicer
    gate: Gate
    store: Store
    log_signer: CheckpointSigner
    reloader: Reloader
    port: int
    ops_port: int | None
    metrics: Metrics
    readiness: StoreReadiness
    admission: Admission
    metrics_server: MetricsServer | None = None
    witnessing: Witnessing | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        # Witnesses are asked only once the server runs (never on a failed start).
        if self.witnessing is not None:
            self.witnessing.start()

    def stop(self, grace: float) -> None:
        """Report NOT_SERVING, refuse new calls, finish in-flight ones, close the store."""
        with self._lock:
            if self._stopped.is_set():
                return
            log.info("shutdown_started", grace_seconds=grace)
            self._stopping.set()
            self.metrics.ready.set(0)
            self.health.enter_graceful_shutdown()
            self.server.stop(grace).wait()
            if self.ops_server is not None:
                self.ops_server.stop(0).wait()
            if self.witnessing is not None:
                self.witnessing.stop()
            self.store.close()
            self.readiness.close()
            self.admission.shutdown()
            if self.metrics_server is not None:
                self.metrics_server.stop()
            self._stopped.set()
            log.info("shutdown_complete")

    def wait(self) -> None:
        self._stopped.wait()

    def watch_store(self, services: tuple[str, ...]) -> None:
        """Until stop: report `services` NOT_SERVING while a write could not commit now
        (`StoreReadiness`) and SERVING once it could again (logged once per change)."""
        serving = True
        while not self._stopping.wait(STORE_CHECK_SECONDS):
            problem = self.readiness.problem()
            ok = not problem
            if ok == serving or self._stopping.is_set():
                continue
            serving = ok
            self.metrics.ready.set(1 if ok else 0)
            if ok:
                log.info("store_reachable")
            else:
                log.warning("store_unreachable", error=problem)
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in services:
                self.health.set(name, status)


def load_service_key(settings: Settings) -> Ed25519PrivateKey:
    """The receipt-signing key; raises ConfigError with what to do when it is unusable."""
    return _load_ed25519(settings.service_key_path, "service key")


def load_log_signer(settings: Settings, service_key: Ed25519PrivateKey) -> CheckpointSigner:
    """The checkpoint signer: `log_origin` with `log_key_path`, or the service key.

    Raises ConfigError when the log key is unusable.
    """
    key = service_key
    if settings.log_key_path is not None:
        key = _load_ed25519(settings.log_key_path, "log key")
    return CheckpointSigner(settings.log_origin, key)


def _load_ed25519(path: Path, what: str) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{what} {path} does not exist; create one with `eucgate keygen DIR`"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{what} {path} must be an Ed25519 key")
    return key


def load_access(settings: Settings) -> Access:
    """Who may call: the access file's identities, or anonymous under `insecure`.

    Raises ConfigError when the access file or its client CAs are unusable.
    """
    if settings.access_path is None:
        return Access(None)
    return Access(AccessMap.load(settings.access_path))


def _credentials(settings: Settings, access: Access) -> grpc.ServerCredentials | None:
    """Mutual TLS with the access file's client CAs as the only roots; None if insecure."""
    if access.roots is None or settings.tls_cert_path is None or settings.tls_key_path is None:
        return None
    try:
        pair = (settings.tls_key_path.read_bytes(), settings.tls_cert_path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read TLS material: {exc}") from exc
    return grpc.ssl_server_credentials(
        [pair], root_certificates=access.roots, require_client_auth=True
    )


def start_server(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    held: StoreLock | None = None,
    share_port: bool = False,
) -> RunningServer:
    """Open the store, load the signed bundle and key, and start serving.

    `clock` is the decision time source; only tests pass another than the real clock.
    `held` and `share_port` are for one of several worker processes (api.workers): the
    store lock their parent took, and binding the ports with SO_REUSEPORT beside the
    other workers (otherwise a second server on the port is refused).
    Raises ConfigError or BundleError (nothing is left running) when the configuration,
    policy-admin keys, bundle (unsigned, wrongly signed or invalid) or key is unusable,
    or when the address cannot be bound.
    """
    source = PolicySource.from_settings(settings)
    bundle = source.read()
    key = load_service_key(settings)
    log_signer = load_log_signer(settings, key)
    access = load_access(settings)
    credentials = _credentials(settings, access)
    store = open_store(
        _store_location(settings),
        log_signer,
        _pool_settings(settings),
        create=settings.init_store,
        held=held,
    )
    metrics = Metrics()
    store.observe_writes(metrics)
    metrics_server: MetricsServer | None = None
    try:
        gate = Gate(
            store,
            bundle,
            key,
            max_payload_bytes=settings.max_payload_bytes,
            max_signatures=settings.max_signatures,
            clock=clock,
            verification_keys=earlier_service_keys(settings),
        )
        reloader = Reloader(source, gate)
        metrics.watch_bundle(lambda: (gate.bundle.name, gate.bundle.digest))
        health_servicer = health.HealthServicer(experimental_non_blocking=True)
        admission = Admission(
            access,
            workers=settings.max_workers,
            max_concurrent_calls=settings.max_concurrent_calls,
            stream_workers=settings.stream_workers,
            per_method=settings.max_streams_per_method,
            per_caller=settings.max_streams_per_caller,
        )
        server = grpc.server(
            admission.unary_pool,
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.max_connection_age_ms", settings.max_connection_age_seconds * 1000),
                ("grpc.max_connection_age_grace_ms", int(settings.grace_seconds * 1000)),
                ("grpc.so_reuseport", 1 if share_port else 0),
            ],
            # A last resort: our own limits refuse first, with ErrorInfo and RetryInfo.
            maximum_concurrent_rpcs=admission.hard_limit,
            interceptors=[
                RpcMetricsInterceptor(metrics),
                AdmissionInterceptor(admission),
                AccessInterceptor(access),
            ],
        )
        certificate_service_pb2_grpc.add_CertificateServiceServicer_to_server(
            CertificateServicer(gate, store, store, access), server
        )
        witnessing = _add_audit_service(server, settings, store, log_signer, access, metrics)
        policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(
            PolicyServicer(reloader, store, access, settings.bundle_path), server
        )
        licence_service_pb2_grpc.add_LicenceServiceServicer_to_server(
            LicenceServicer(gate, store, store, access), server
        )
        review_service_pb2_grpc.add_ReviewServiceServicer_to_server(
            ReviewServicer(gate, store, store, access), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                AUDIT_SERVICE_NAME,
                POLICY_SERVICE_NAME,
                LICENCE_SERVICE_NAME,
                REVIEW_SERVICE_NAME,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        port = _bind(server, settings.listen, credentials)
        ops_server, ops_port = None, None
        if settings.ops_listen:
            ops_server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=2),
                options=[("grpc.so_reuseport", 1 if share_port else 0)],
            )
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, ops_server)
            ops_port = _bind(ops_server, settings.ops_listen, None)
        if settings.metrics_listen:
            metrics_server = metrics.serve(settings.metrics_listen)
        server.start()
        if ops_server is not None:
            ops_server.start()
    except BaseException:
        if metrics_server is not None:
            metrics_server.stop()
        store.close()
        raise
    services = (
        SERVICE_NAME,
        AUDIT_SERVICE_NAME,
        POLICY_SERVICE_NAME,
        LICENCE_SERVICE_NAME,
        REVIEW_SERVICE_NAME,
    )
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics.ready.set(1)
    metrics.insecure.set(1 if access.insecure else 0)
    if access.insecure:
        log.warning(
            "insecure_api",
            message="INSECURE: the API port is plaintext and every caller is anonymous with "
            "every role; for local use only, never in production",
        )
    log.info(
        "serving",
        port=port,
        ops_port=ops_port,
        metrics_port=None if metrics_server is None else metrics_server.port,
        bundle=bundle.name,
        bundle_digest=bundle.digest,
        tls=credentials is not None,
        insecure=access.insecure,
        log_origin=log_signer.origin,
        log_key=log_signer.verifier_key,
        log_size=store.tree_state().size,
        store="postgresql" if is_postgresql(settings.store) else "sqlite",
    )
    running = RunningServer(
        server=server,
        ops_server=ops_server,
        health=health_servicer,
        gate=gate,
        store=store,
        log_signer=log_signer,
        reloader=reloader,
        port=port,
        ops_port=ops_port,
        metrics=metrics,
        readiness=StoreReadiness(
            store,
            timeout=settings.readiness_probe_timeout_seconds,
            window=settings.readiness_failure_window_seconds,
        ),
        admission=admission,
        metrics_server=metrics_server,
        witnessing=witnessing,
    )
    threading.Thread(
        target=running.watch_store,
        args=(("", *services),),
        name="eucgate-store-readiness",
        daemon=True,
    ).start()
    return running


def _add_audit_service(
    server: grpc.Server,
    settings: Settings,
    store: Store,
    log_signer: CheckpointSigner,
    access: Access,
    metrics: Metrics,
) -> Witnessing | None:
    """Serve AuditService; returns the component that asks the configured witnesses to
    cosign checkpoints (not started), or None when no witness is configured."""
    witnessing = _witnessing(settings, store, metrics)
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(
        AuditServicer(
            store,
            store,
            store,
            log_signer,
            access,
            None if witnessing is None else witnessing.latest_witnessed,
        ),
        server,
    )
    return witnessing


def _witnessing(settings: Settings, store: Store, metrics: Metrics) -> Witnessing | None:
    if not settings.witnesses:
        return None
    return Witnessing(
        store,
        store,
        [WitnessEndpoint(w.url, WitnessVerifier.parse(w.verifier_key)) for w in settings.witnesses],
        quorum=settings.witness_quorum or len(settings.witnesses),
        interval=settings.witness_interval_seconds,
        registry=metrics.registry,
    )


def _store_location(settings: Settings) -> str:
    """The configured PostgreSQL URL, or the SQLite file in data_dir."""
    return settings.store or str(sqlite_path(settings))


def sqlite_path(settings: Settings) -> Path:
    """Where the embedded store lives: the SQLite file in data_dir."""
    return settings.data_dir / SQLITE_FILE


def _pool_settings(settings: Settings) -> PoolSettings:
    return PoolSettings(
        size=settings.store_pool_size,
        statement_timeout_ms=settings.store_statement_timeout_ms,
        connect_timeout_s=settings.store_connect_timeout_seconds,
    )


def _bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise ConfigError(f"cannot listen on {address}")
    return port


def serve(
    settings: Settings,
    *,
    held: StoreLock | None = None,
    share_port: bool = False,
    started: Callable[[RunningServer], None] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully; reload the bundle on SIGHUP.

    `held`, `share_port`: as start_server; `started` hears of the server once it serves
    (a worker tells its parent so).
    """
    running = start_server(settings, held=held, share_port=share_port)

    def stop() -> None:
        # On a thread of its own: in-flight requests finish meanwhile, and a second
        # signal is still heard.
        threading.Thread(target=running.stop, args=(settings.grace_seconds,)).start()

    def reload() -> None:
        threading.Thread(target=_reload_on_signal, args=(running.reloader,)).start()

    signals.handle({signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload})
    if started is not None:
        started(running)
    running.wait()


def _reload_on_signal(reloader: Reloader) -> None:
    # The reloader logs a refused bundle with its reason; the active one keeps serving.
    try:
        reloader.reload(trigger="SIGHUP")
    except EucgateError:
        pass
    except Exception:
        log.exception("bundle_reload_failed", trigger="SIGHUP")
