#!/usr/bin/env bash
# Installs the real peers that the end-to-end tests (test/e2e) run against, from Debian packages:
# the distribution registry, skopeo, containerd (with ctr), openssl (the token server's cert),
# the Docker Engine (docker.io: dockerd and its docker CLI), podman, and busybox-static (the one
# static executable in the images that `docker run` / `podman run` execute), and chromium (the status page is
# checked in a real headless browser driven by playwright-core; no browser is downloaded), and zstd (Node 20 has no
# zstd in zlib: `export`/`import` of a `.tar.zst` bundle pipe through it).
# Ceph (mon, osd, radosgw, ceph-common) is the real S3-compatible store: scripts/rgw.sh runs a
# throw-away single-node cluster on 127.0.0.1 for the S3 tests.
# The Docker tools are checked by absolute path: a docker CLI elsewhere on PATH (e.g. a client-only
# /usr/local/bin/docker) does not count, the tests drive /usr/sbin/dockerd with the matching /usr/bin/docker.
# No daemon is started by the install (apt-ensure.sh blocks service starts); each test runs its own.
set -euo pipefail
exec bash "$(dirname "$0")/apt-ensure.sh" install-test-deps \
  docker-registry=docker-registry skopeo=skopeo containerd=containerd ctr=containerd openssl=openssl \
  /usr/sbin/dockerd=docker.io /usr/bin/docker=docker.io podman=podman /bin/busybox=busybox-static \
  ceph-mon=ceph-mon ceph-osd=ceph-osd radosgw=radosgw radosgw-admin=radosgw ceph=ceph-common monmaptool=ceph-common \
  /usr/bin/chromium=chromium zstd=zstd
