#!/usr/bin/env bash
# Installs the real peers that the end-to-end tests (test/e2e) run against, from Debian packages:
# the distribution registry, skopeo, containerd (with ctr) and openssl (the token server's cert).
set -euo pipefail
exec bash "$(dirname "$0")/apt-ensure.sh" install-test-deps \
  docker-registry=docker-registry skopeo=skopeo containerd=containerd ctr=containerd openssl=openssl
