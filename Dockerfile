# credit-repair runner image (minimal; completed later).
#   docker build -t credit-repair .
#   docker build --build-arg BASE_IMAGE=debian:12 -t credit-repair .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TZ=Asia/Shanghai

# A plain Debian base has no python3 / venv; a slim image may lack tzdata.
# Install only what is missing.
RUN set -eu; pkgs=""; \
    command -v python3 >/dev/null 2>&1 || pkgs="$pkgs python3"; \
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs="$pkgs python3-venv"; \
    [ -e /usr/share/zoneinfo/Asia/Shanghai ] || pkgs="$pkgs tzdata"; \
    if [ -n "$pkgs" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -m venv /opt/venv

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY . /app
RUN pip install /app \
    && useradd --system --user-group --uid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir -p /app/config /data \
    && chown app:app /data

ENV CREDIT_REPAIR_DATABASE_URL=sqlite:////data/credit-repair.db
VOLUME /data
USER app
CMD ["credit-repair", "run"]
