# syntax=docker/dockerfile:1
# eucgate server image: multi-stage, slim, non-root, read-only root file system.
#
#   docker build -t eucgate .
#   docker run --read-only --tmpfs /tmp -v eucgate-data:/var/lib/eucgate \
#     -p 50051:50051 -p 9090:9090 -p 9091:9091 eucgate
#
# The only writable paths the service needs are the data volume and /tmp.
#
# Supply chain: the base image is pinned by digest (both stages), and every third-party
# package comes from requirements.lock, pinned with its SHA-256 hashes and installed
# with --require-hashes; the two local packages install with --no-deps and without
# build isolation, so nothing unpinned is fetched. To move the base, take the digest of
# the tag (`docker buildx imagetools inspect python:3.11-slim`) and replace it in both
# FROM lines; to move dependencies, run the command at the top of requirements.lock
# (tests/unit/test_requirements_lock.py checks the lock against pyproject.toml).

# ---- build: install the locked dependencies, then the client and the server ----
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

# PyICU (party-name screening) builds from source against the system's ICU. Debian
# package versions follow the pinned base image's archive and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ libicu-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/eucgate
WORKDIR /src

# Dependencies first: they change less often than the code, so their layer is reused.
COPY requirements.lock ./
RUN /opt/eucgate/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY clients/python/ clients/python/
RUN /opt/eucgate/bin/pip install --no-cache-dir --no-deps --no-build-isolation ./clients/python

COPY pyproject.toml README.md ./
COPY service/ service/
RUN /opt/eucgate/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
    && /opt/eucgate/bin/pip check \
    && /opt/eucgate/bin/eucgate --help > /dev/null

# ---- runtime: the venv only; no compiler, no sources, no pip cache ----
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS runtime

LABEL org.opencontainers.image.title="eucgate" \
      org.opencontainers.image.description="End-user certificate validation service" \
      org.opencontainers.image.licenses="Apache-2.0"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# ICU's shared libraries for PyICU: the runtime package libicu-dev depends on (libicu72
# on bookworm, libicu76 on trixie), named by asking the archive, not by a version here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       "$(apt-cache depends libicu-dev | awk '/Depends: libicu[0-9]+$/ {print $2; exit}')" \
    && rm -rf /var/lib/apt/lists/*

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
