"""Admission: unary calls and long-lived streams never compete for the same workers.

gRPC Python's synchronous server runs each call, unary or streaming, on a pool thread for
its whole life, and a server-streaming call whose client stops reading holds its thread
until its deadline or its connection ends. With one pool, sixteen open Health/Watch
streams (or unread Replay streams) took every worker and every SubmitCertificate timed
out while health said SERVING. So:

- Unary calls run on the server's pool (`max_workers` threads) and at most
  `max_concurrent_calls` of them wait or run there; one more is refused at once,
  RESOURCE_EXHAUSTED REQUEST_LOAD_SHED with RetryInfo, rather than queueing past its
  deadline.
- Streaming calls run on a pool of their own (`stream_workers` threads), so however many
  streams are open, unary calls keep every worker. At most `stream_workers` streams are
  open in all, `max_streams_per_method` of one method and `max_streams_per_caller` of
  one caller (its access-file name; `anonymous` under insecure); one more is refused
  with RESOURCE_EXHAUSTED REQUEST_STREAM_LIMIT, the limit named in ErrorInfo metadata,
  with RetryInfo.
- Refusals run on a small pool of their own, so a full pool never delays its refusal.

The pool-wide checks are made when gRPC asks the interceptors for a handler, on its one
polling thread, against what each pool holds (queued or running): a call counts until
its pool work ends, so the counts can neither leak nor be raced. The per-method and
per-caller counts need the caller's certificate, so they are taken on the stream's
thread and released when the call ends (`ServicerContext.add_callback`).

gRPC's own `maximum_concurrent_rpcs` stays as a hard bound above all of this; it refuses
with a bare RESOURCE_EXHAUSTED before any interceptor runs (docs/reason-codes.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from typing import Any, ParamSpec, TypeVar

import grpc
import structlog

from eucgate.api.access import Access
from eucgate.api.status import build_status
from eucgate.metrics import ServerInterceptorBase

log = structlog.get_logger("eucgate.limits")

# What RetryInfo advises: a shed unary call may try again soon; a stream slot frees
# only when another stream ends.
SHED_RETRY_SECONDS = 1.0
STREAM_RETRY_SECONDS = 5.0
# Threads that answer refusals: each refusal takes well under a millisecond.
REFUSAL_WORKERS = 2
# The caller key of a TLS peer no access-file entry maps (only public methods admit one).
UNMAPPED = "(unmapped)"

P = ParamSpec("P")
T = TypeVar("T")
Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class CountedPool(futures.ThreadPoolExecutor):
    """A thread pool that knows how much work it holds, queued or running."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.size = max_workers
        self._held = 0
        self._count = threading.Lock()

    @property
    def held(self) -> int:
        """Work submitted and not yet finished."""
        return self._held

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> futures.Future[T]:
        with self._count:
            self._held += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: futures.Future[Any]) -> None:
        self._release()

    def _release(self) -> None:
        with self._count:
            self._held -= 1


class StreamCounts:
    """Open streams per method and per caller, with their caps. Thread-safe."""

    def __init__(self, per_method: int, per_caller: int) -> None:
        self.per_method = per_method
        self.per_caller = per_caller
        self._lock = threading.Lock()
        self._methods: Counter[str] = Counter()
        self._callers: Counter[str] = Counter()

    def acquire(self, method: str, caller: str) -> str:
        """Count one more stream; "" if admitted, else the limit ("method" or "caller")
        it would break (nothing is counted then)."""
        with self._lock:
            if self._callers[caller] >= self.per_caller:
                return "caller"
            if self._methods[method] >= self.per_method:
                return "method"
            self._callers[caller] += 1
            self._methods[method] += 1
            return ""

    def release(self, method: str, caller: str) -> None:
        with self._lock:
            self._callers[caller] -= 1
            self._methods[method] -= 1
            if not self._callers[caller]:
                del self._callers[caller]
            if not self._methods[method]:
                del self._methods[method]

    def open(self, *, method: str = "", caller: str = "") -> int:
        """Streams open now of `method` or of `caller` (for tests and logs)."""
        with self._lock:
            return self._methods[method] if method else self._callers[caller]


def stream_limit_status(limit: str, bound: int, method: str, caller: str) -> grpc.Status:
    """RESOURCE_EXHAUSTED REQUEST_STREAM_LIMIT naming the limit (server, method or caller)."""
    return build_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_STREAM_LIMIT",
        f"too many open streams ({limit} limit {bound}); close one or retry later",
        metadata={"limit": limit, "max_streams": str(bound), "method": method, "caller": caller},
        retry_after=STREAM_RETRY_SECONDS,
    )


def load_shed_status(bound: int, method: str) -> grpc.Status:
    """RESOURCE_EXHAUSTED REQUEST_LOAD_SHED: `bound` unary calls are already in hand."""
    return build_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_LOAD_SHED",
        f"the server has {bound} calls in hand (max_concurrent_calls); retry with backoff",
        metadata={"max_concurrent_calls": str(bound), "method": method},
        retry_after=SHED_RETRY_SECONDS,
    )


class Admission:
    """The pools and limits of one server (see the module docstring)."""

    def __init__(
        self,
        access: Access,
        *,
        workers: int,
        max_concurrent_calls: int,
        stream_workers: int,
        per_method: int,
        per_caller: int,
    ) -> None:
        self.access = access
        self.unary_pool = CountedPool(workers, "eucgate-rpc")
        self.stream_pool = CountedPool(stream_workers, "eucgate-stream")
        self.refusal_pool = CountedPool(REFUSAL_WORKERS, "eucgate-refuse")
        self.max_concurrent_calls = max_concurrent_calls
        self.streams = StreamCounts(per_method, per_caller)

    @property
    def hard_limit(self) -> int:
        """gRPC's own bound on calls in hand, well above ours so that ours answer first."""
        return 2 * (self.max_concurrent_calls + self.stream_pool.size) + 64

    def shutdown(self) -> None:
        for pool in (self.unary_pool, self.stream_pool, self.refusal_pool):
            pool.shutdown(wait=False, cancel_futures=True)


class AdmissionInterceptor(ServerInterceptorBase):
    """Puts each call on its pool, or refuses it at once (see the module docstring).

    Runs inside the metrics interceptor (so refusals are counted) and outside the access
    interceptor; a pool is chosen by the `experimental_thread_pool` attribute gRPC reads
    from the outermost behaviour, which the metrics interceptor carries over.
    """

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        admission = self._admission
        method = handler_call_details.method
        if handler.unary_unary is not None or handler.stream_unary is not None:
            if admission.unary_pool.held < admission.max_concurrent_calls:
                return handler  # the server's own pool
            log.warning("rpc_shed", rpc=method, max_concurrent_calls=admission.max_concurrent_calls)
            status = load_shed_status(admission.max_concurrent_calls, method)
            return _rebuilt(handler, lambda _b: _refuse(status), admission.refusal_pool)
        pool = admission.stream_pool
        if pool.held >= pool.size:
            log.warning("rpc_stream_refused", rpc=method, limit="server", max_streams=pool.size)
            status = stream_limit_status("server", pool.size, method, "")
            return _rebuilt(handler, lambda _b: _refuse(status), admission.refusal_pool)
        return _rebuilt(handler, lambda b: self._counted(method, b), pool)

    def _counted(self, method: str, behaviour: Behaviour) -> Behaviour:
        admission = self._admission
        counts = admission.streams

        def admitted(request: Any, context: grpc.ServicerContext) -> Any:
            caller = admission.access.caller(context)
            who = UNMAPPED if caller is None else caller.name
            limit = counts.acquire(method, who)
            if limit:
                bound = counts.per_caller if limit == "caller" else counts.per_method
                log.warning("rpc_stream_refused", rpc=method, caller=who, limit=limit)
                context.abort_with_status(stream_limit_status(limit, bound, method, who))
            if not context.add_callback(lambda: counts.release(method, who)):
                counts.release(method, who)  # the call is already over
            return behaviour(request, context)

        return admitted


def _refuse(status: grpc.Status) -> Behaviour:
    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    return refuse


def _rebuilt(
    handler: grpc.RpcMethodHandler[Any, Any],
    wrap: Callable[[Behaviour], Behaviour],
    pool: futures.ThreadPoolExecutor,
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` of the same kind and codec, its behaviour wrapped, run on `pool`."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    )
    for attribute, make in kinds:
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            wrapped = wrap(behaviour)
            # gRPC's documented-experimental hook: the pool a method's calls run on.
            wrapped.experimental_thread_pool = pool  # type: ignore[attr-defined]
            return make(
                wrapped,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler  # pragma: no cover - every handler has one behaviour
