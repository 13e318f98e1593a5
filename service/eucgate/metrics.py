"""Prometheus metrics, served over HTTP on the operations port, never the API port.

Each server has its own registry, never the process-wide default, so several servers in
one process (tests, benchmarks) keep their own counts. What is measured:

- every RPC, by service, method and gRPC status code, and its latency: one interceptor
  on the API server (`RpcMetricsInterceptor`), so no handler can be missed;
- decisions recorded, by outcome, and the store writer's batch sizes and commit times:
  the store's batch writer reports them (`store.writer.WriteObserver`);
- the active policy bundle (an info metric, read when scraped, so a reload shows at
  once) and readiness (1 while health reports SERVING).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import InfoMetricFamily
from prometheus_client.registry import Collector

from eucgate.core.decision import Outcome
from eucgate.errors import ConfigError

# Latency buckets in seconds: a decision takes milliseconds; a slow store, seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Jobs per store transaction: 1 up to writer.MAX_BATCH.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _BundleCollector(Collector):
    """`eucgate_bundle_info`: the bundle new decisions use, asked for at each scrape."""

    def __init__(self, active: Callable[[], tuple[str, str]]) -> None:
        self._active = active

    def collect(self) -> Iterable[InfoMetricFamily]:
        name, digest = self._active()
        family = InfoMetricFamily("eucgate_bundle", "The active policy bundle.")
        family.add_metric([], {"name": name, "digest": digest})
        yield family

    def describe(self) -> Iterable[Any]:
        return []


class Metrics:
    """One server's metrics and their registry. Thread-safe."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("grpc_service", "grpc_method", "grpc_code")
        self.rpcs = Counter(
            "eucgate_rpc_handled",
            "RPCs completed, by service, method and gRPC status code.",
            labels,
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "eucgate_rpc_handling_seconds",
            "Time from receiving an RPC to its last response, by service and method.",
            labels[:2],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "eucgate_decisions_recorded",
            "Decisions recorded in the store, by outcome (replayed submissions excluded).",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in Outcome:
            self.decisions.labels(outcome=outcome.value)
        self.batch_size = Histogram(
            "eucgate_store_batch_size",
            "Jobs (decisions, shipments, bundles) per store write transaction.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "eucgate_store_commit_seconds",
            "Time the store writer took to write and commit one batch.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "eucgate_ready",
            "1 while the server reports SERVING (a write could commit now, not shutting "
            "down), else 0.",
            registry=self.registry,
        )
        self.insecure = Gauge(
            "eucgate_insecure",
            "1 when the API port is plaintext with anonymous callers (`insecure`), else 0.",
            registry=self.registry,
        )

    def watch_bundle(self, active: Callable[[], tuple[str, str]]) -> None:
        """Report the active bundle's (name, digest), as `active` gives them at scrape time."""
        self.registry.register(_BundleCollector(active))

    # store.writer.WriteObserver
    def batch_committed(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.commit_seconds.observe(seconds)

    def decision_recorded(self, outcome: str) -> None:
        self.decisions.labels(outcome=outcome).inc()

    def serve(self, address: str) -> MetricsServer:
        """Serve the registry over HTTP at host:port (port 0 picks one).

        Raises ConfigError when the address cannot be bound.
        """
        host, _, port = address.rpartition(":")
        try:
            httpd, thread = start_http_server(
                int(port), addr=host.strip("[]"), registry=self.registry
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {address}: {exc}") from exc
        return MetricsServer(httpd, thread.join)


class MetricsServer:
    """A running metrics HTTP server; `stop` closes its port."""

    def __init__(self, httpd: WSGIServer, join: Callable[[], None]) -> None:
        self._httpd = httpd
        self._join = join
        self.port = httpd.server_port

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._join()


def _split(method: str) -> tuple[str, str]:
    """'/pkg.Service/Method' as ('pkg.Service', 'Method')."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


# Called once an RPC is over: its context, its start time and the error it raised, if any.
Done = Callable[[grpc.ServicerContext, float, BaseException | None], None]


if TYPE_CHECKING:
    ServerInterceptorBase = grpc.ServerInterceptor[Any, Any]  # generic only in the stubs
else:
    ServerInterceptorBase = grpc.ServerInterceptor


class RpcMetricsInterceptor(ServerInterceptorBase):
    """Counts every RPC the server knows by its final status code and times it.

    Unknown methods (answered UNIMPLEMENTED by gRPC) are not counted: their names come
    from the caller and would make unbounded label values.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        done = self._done(*_split(handler_call_details.method))
        codec = (handler.request_deserializer, handler.response_serializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _same_pool(_unary(handler.unary_unary, done), handler.unary_unary), *codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _same_pool(_unary(handler.stream_unary, done), handler.stream_unary), *codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _same_pool(_streaming(handler.unary_stream, done), handler.unary_stream), *codec
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _same_pool(_streaming(handler.stream_stream, done), handler.stream_stream),
                *codec,
            )
        return handler  # pragma: no cover - gRPC handlers always have one behaviour

    def _done(self, service: str, method: str) -> Done:
        def done(
            context: grpc.ServicerContext, started: float, error: BaseException | None
        ) -> None:
            code = _code(context, error)
            self._metrics.rpcs.labels(service, method, code.name).inc()
            self._metrics.rpc_seconds.labels(service, method).observe(time.perf_counter() - started)

        return done


W = TypeVar("W", bound=Callable[..., Any])


def _same_pool(wrapper: W, behaviour: object) -> W:
    """`wrapper` runs on the thread pool `behaviour` asked for (api.limits puts streams
    on a pool of their own through gRPC's `experimental_thread_pool` attribute)."""
    pool = getattr(behaviour, "experimental_thread_pool", None)
    if pool is not None:
        wrapper.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return wrapper


def _code(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the caller gets: what the handler set or aborted with; OK if it
    returned without setting one; CANCELLED if its stream was closed under it; UNKNOWN if
    it raised without setting one."""
    # ServicerContext.code() is gRPC's own API (1.38+); the stubs do not list it.
    code = cast(grpc.StatusCode | None, cast(Any, context).code())
    if code is not None:
        return code
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, GeneratorExit):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _unary(behaviour: Callable[[Any, grpc.ServicerContext], Any], done: Done) -> Callable[..., Any]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = behaviour(request, context)
        except BaseException as exc:
            done(context, started, exc)
            raise
        done(context, started, None)
        return response

    return wrapped


def _streaming(
    behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]], done: Done
) -> Callable[..., Iterator[Any]]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            yield from behaviour(request, context)
        except BaseException as exc:
            done(context, started, exc)
            raise
        done(context, started, None)

    return wrapped
