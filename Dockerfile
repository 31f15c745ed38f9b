# credit-repair runner image.
#
#   docker build -t credit-repair .
#   docker build --build-arg BASE_IMAGE=debian:12 -t credit-repair .   # any Debian 12 base
#   docker run -d -v credit-repair-data:/data credit-repair             # the scheduler
#   docker run --rm -v credit-repair-data:/data credit-repair credit-repair run --once
#
# Two stages on the same base (so the Python ABI matches): `builder` turns the project
# and every dependency into wheels; the runtime stage installs only those wheels into a
# venv (no compiler, no build tools, no source tree). Works on python:3.11-slim and on a
# plain Debian 12 image (python3 and python3-venv are installed when missing).
#
# Behind a TLS-intercepting proxy, give pip the CA bundle for the build only:
#   podman build -v /etc/ssl/certs/ca-certificates.crt:/build-ca.crt:ro \
#       --build-arg PIP_CERT=/build-ca.crt ...
# (scripts/container-check.sh builds and runs it that way with podman, no Docker needed.)
#
# Runtime layout: code in /opt/venv, config in /app/config (mount your own over it, or
# override any key with CREDIT_REPAIR_<SECTION>__<KEY>), templates in /app/templates,
# sample data in /app/sample; the SQLite database, outbox and reports in the /data volume.
# The entrypoint reads CREDIT_REPAIR_*__*_FILE / CREDIT_REPAIR_DATABASE_URL_FILE /
# PGPASSWORD_FILE secrets into the variable without _FILE, applies the migrations
# (`credit-repair init`; skipped for `health` and `check-config`, or with
# CREDIT_REPAIR_SKIP_INIT=1) and execs the command.

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ARG PIP_CERT=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

SHELL ["/bin/sh", "-eu", "-c"]

# A plain Debian base has no python3 / venv module; python:3.11-slim has both.
# hadolint ignore=DL3008,SC2086
RUN pkgs=""; \
    command -v python3 >/dev/null 2>&1 || pkgs="$pkgs python3"; \
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs="$pkgs python3-venv"; \
    if [ -n "$pkgs" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -m venv /opt/build-venv

WORKDIR /src
# Only what the wheel is built from (see .dockerignore), so config/template edits keep
# this layer cached.
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY jobs ./jobs

# Wheels of the project and of every dependency (all have binary wheels: no compiler).
# An empty PIP_CERT would be read as a path: drop it unless given.
RUN [ -n "$PIP_CERT" ] || unset PIP_CERT; \
    /opt/build-venv/bin/pip wheel --wheel-dir /wheels . ; \
    sha256sum /wheels/*.whl > /wheels/SHA256SUMS; \
    cat /wheels/SHA256SUMS

# ---------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="credit-repair" \
      org.opencontainers.image.description="Market-entity credit repair (信用修复) campaign pipeline" \
      org.opencontainers.image.licenses="MIT"

SHELL ["/bin/sh", "-eu", "-c"]

# tzdata: the app computes every date in Asia/Shanghai (settings.yaml `timezone`)
# whatever TZ says; a slim base may lack the zone database.
# hadolint ignore=DL3008,SC2086
RUN pkgs=""; \
    command -v python3 >/dev/null 2>&1 || pkgs="$pkgs python3"; \
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs="$pkgs python3-venv"; \
    [ -e /usr/share/zoneinfo/Asia/Shanghai ] || pkgs="$pkgs tzdata"; \
    if [ -n "$pkgs" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --gid 10001 app; \
    useradd --no-log-init --uid 10001 --gid app --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin app; \
    mkdir -p /app/config /data/outbox /data/reports; \
    chown -R app:app /data

# Install the wheels (no index: exactly what the builder resolved) into a fresh venv,
# through a bind mount of the builder's /wheels so no layer of this image keeps them.
# The checksum list is copied first: its layer changes whenever the wheels do, so a
# builder that does not key its cache on a mount's content (buildah 1.28) still reinstalls.
COPY --from=builder /wheels/SHA256SUMS /opt/venv-wheels.sha256
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    sha256sum -c --quiet /opt/venv-wheels.sha256; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links /wheels credit-repair; \
    /opt/venv/bin/credit-repair --help >/dev/null

# The entrypoint (kept here so the image is one file to read); single quotes on purpose.
# hadolint ignore=SC2016
RUN printf '%s\n' \
    '#!/bin/sh' \
    '# credit-repair container entrypoint: secrets from *_FILE variables, migrations, exec.' \
    'set -eu' \
    'for var in $(env | sed -n -e "s/^\(CREDIT_REPAIR_[A-Z0-9_]*__[A-Z0-9_]*\)_FILE=.*/\1/p" \' \
    '        -e "s/^\(CREDIT_REPAIR_DATABASE_URL\)_FILE=.*/\1/p" -e "s/^\(PGPASSWORD\)_FILE=.*/\1/p"); do' \
    '    file=$(printenv "${var}_FILE")' \
    '    [ -r "$file" ] || { echo "entrypoint: ${var}_FILE: cannot read $file" >&2; exit 2; }' \
    '    value=$(cat "$file")' \
    '    export "$var=$value"' \
    '    unset "${var}_FILE"' \
    'done' \
    'case "${1:-}:${2:-}" in' \
    '    credit-repair:health|credit-repair:check-config|credit-repair:--help|credit-repair:-h) ;;' \
    '    credit-repair:*)' \
    '        if [ "${CREDIT_REPAIR_SKIP_INIT:-0}" != 1 ]; then' \
    '            credit-repair init >&2 || { echo "entrypoint: credit-repair init failed" >&2; exit 1; }' \
    '        fi ;;' \
    'esac' \
    'exec "$@"' \
    > /usr/local/bin/credit-repair-entrypoint; \
    chmod 0755 /usr/local/bin/credit-repair-entrypoint

WORKDIR /app
COPY config ./config
COPY templates ./templates
COPY sample ./sample

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TZ=Asia/Shanghai \
    CREDIT_REPAIR_CONFIG=/app/config \
    CREDIT_REPAIR_DATABASE_URL=sqlite:////data/credit-repair.db \
    CREDIT_REPAIR_PATHS__VAR_DIR=/data \
    CREDIT_REPAIR_PATHS__OUTBOX_DIR=/data/outbox \
    CREDIT_REPAIR_PATHS__REPORTS_DIR=/data/reports

VOLUME ["/data"]
# The `app` user (numeric, so runAsNonRoot-style checks can verify it).
USER 10001:10001
WORKDIR /data

# The scheduler writes its heartbeat every tick (60 s); `health` fails once it is older
# than runner.heartbeat_stale_seconds (300 s) or the database does not answer. Through
# the entrypoint so *_FILE secrets (e.g. the database password) apply; it skips `init`.
# `credit-repair serve` (the company answer page) listens here; `run` (the default) does not.
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=20s --start-period=120s --retries=3 \
    CMD ["/usr/local/bin/credit-repair-entrypoint", "credit-repair", "health"]

ENTRYPOINT ["/usr/local/bin/credit-repair-entrypoint"]
# SIGTERM (docker stop) ends it cleanly with exit 0; give it shutdown_grace_seconds (30 s).
STOPSIGNAL SIGTERM
CMD ["credit-repair", "run"]
