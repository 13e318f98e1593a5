# syntax=docker/dockerfile:1
# eucgate server image: multi-stage, slim, non-root, read-only root file system.
#
#   docker build -t eucgate .
#   docker run --read-only --tmpfs /tmp -v eucgate-data:/var/lib/eucgate \
#     -p 50051:50051 -p 9090:9090 -p 9091:9091 eucgate
#
# The only writable paths the service needs are the data volume and /tmp.

# ---- build: install the client, then the server, into a self-contained venv ----
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/eucgate
WORKDIR /src

# The client first: it changes less often than the server, so its layer is reused.
COPY clients/python/ clients/python/
RUN /opt/eucgate/bin/pip install --no-cache-dir ./clients/python

COPY pyproject.toml README.md ./
COPY service/ service/
RUN /opt/eucgate/bin/pip install --no-cache-dir . \
    && /opt/eucgate/bin/eucgate --help > /dev/null

# ---- runtime: the venv only; no compiler, no sources, no pip cache ----
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="eucgate" \
      org.opencontainers.image.description="End-user certificate validation service" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 eucgate \
    && useradd --system --uid 10001 --gid eucgate --no-create-home \
       --home-dir /var/lib/eucgate --shell /usr/sbin/nologin eucgate \
    && mkdir -p /var/lib/eucgate \
    && chown eucgate:eucgate /var/lib/eucgate

COPY --from=build /opt/eucgate /opt/eucgate

# Nothing is written outside the data volume and /tmp: no bytecode caches, no home.
ENV PATH=/opt/eucgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/eucgate \
    TMPDIR=/tmp \
    EUCGATE_LISTEN=0.0.0.0:50051 \
    EUCGATE_OPS_LISTEN=0.0.0.0:9090 \
    EUCGATE_METRICS_LISTEN=0.0.0.0:9091 \
    EUCGATE_DATA_DIR=/var/lib/eucgate

VOLUME ["/var/lib/eucgate"]
WORKDIR /var/lib/eucgate
USER 10001:10001

# 50051: the gRPC API. 9090: operations (grpc.health.v1 for probes). 9091: Prometheus
# metrics over HTTP (/metrics).
EXPOSE 50051 9090 9091

ENTRYPOINT ["eucgate"]
CMD ["serve"]
