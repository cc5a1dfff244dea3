#!/usr/bin/env bash
# Installs what `npm run bench` drives, from Debian packages: nginx (nginx-light where the release
# still has it), wrk, the distribution registry, skopeo and openssl (the token server's certificate).
set -euo pipefail
exec bash "$(dirname "$0")/../scripts/apt-ensure.sh" install-bench-deps \
  docker-registry=docker-registry skopeo=skopeo wrk=wrk 'nginx=nginx-light|nginx' openssl=openssl
