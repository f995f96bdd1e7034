#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# image_lib.sh — podman and the images, shared by tests/deploy/test_image.sh and
# tests/deploy/test_compose.sh (sourced after tests/support/lib.sh: uses say, fail, $TMP, $SRC).
#
# Sourcing it exits 77 (skip), saying why, where podman cannot run containers at all. It sets
#   PODMAN   podman with the runc runtime (what this kind of machine allows);
#   RUNOPTS  explicit ulimits for `podman run` / `podman build` (podman's defaults raise the
#            open-files limit above what an unprivileged sandbox may set);
#   BASE     the base image made locally (no registry is reachable), localhost/debian:bookworm-slim.
# Functions:
#   osp_base_image         make $BASE if missing: `debootstrap --variant=minbase bookworm`, package
#                          caches removed, `podman import`; the image is kept between runs, made
#                          under a lock (OSP_IMAGE_BASE_DIR, default /var/tmp/opspool-image-base).
#   osp_podman_build LOG ARGS...
#                          `podman build --format docker --network host` on $BASE (build-arg
#                          DEBIAN_IMAGE); fails the test with the log's tail.
#   osp_build_image TAG [LOG]
#                          the opspool image from deploy/docker/Dockerfile (context: $SRC); the
#                          build's output in LOG (default $TMP/build.log).
#   osp_image_mb TAG       its size in MiB as podman reports it.

command -v podman >/dev/null || { say "podman not installed (apt-get install podman runc)"; exit 77; }
PODMAN=(podman --runtime runc)
RUNOPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)
if ! "${PODMAN[@]}" info >/dev/null 2>&1; then
    say "podman cannot run here: $("${PODMAN[@]}" info 2>&1 | tail -1)"
    exit 77
fi
BASE=localhost/debian:bookworm-slim

osp_base_image() {
    "${PODMAN[@]}" image exists "$BASE" && return 0
    command -v debootstrap >/dev/null || { say "debootstrap not installed"; exit 77; }
    local bdir=${OSP_IMAGE_BASE_DIR:-/var/tmp/opspool-image-base} mirror
    mkdir -p "$bdir"
    # One maker at a time (test_image.sh and test_compose.sh may run side by side).
    exec 8>"$bdir/.lock"
    flock -w 900 8 || fail "could not lock $bdir/.lock"
    if ! "${PODMAN[@]}" image exists "$BASE"; then
        rm -rf "$bdir/rootfs"
        mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        debootstrap --variant=minbase bookworm "$bdir/rootfs" "${mirror:-http://deb.debian.org/debian}" \
            >"$TMP/debootstrap.log" 2>&1 || fail "debootstrap: $(tail -3 "$TMP/debootstrap.log")"
        # What Debian's own slim images leave out: package caches and lists, manuals, translations.
        rm -rf "$bdir"/rootfs/var/cache/apt/* "$bdir"/rootfs/var/lib/apt/lists/* \
            "$bdir"/rootfs/usr/share/man/* "$bdir"/rootfs/usr/share/locale/*
        tar -C "$bdir/rootfs" -c . | "${PODMAN[@]}" import - "$BASE" >/dev/null || fail "podman import"
        rm -rf "$bdir/rootfs"
    fi
    exec 8>&-
}

osp_podman_build() {
    local log=$1; shift
    "${PODMAN[@]}" build --format docker --network host "${RUNOPTS[@]}" \
        --build-arg DEBIAN_IMAGE="$BASE" "$@" >"$log" 2>&1 ||
        fail "podman build $*: $(tail -15 "$log")"
}

osp_build_image() {
    osp_podman_build "${2:-$TMP/build.log}" --build-arg OSP_REVISION="test" \
        -f "$SRC/deploy/docker/Dockerfile" -t "$1" "$SRC"
}

osp_image_mb() {
    local bytes
    bytes=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$1")
    echo $((bytes / 1024 / 1024))
}
