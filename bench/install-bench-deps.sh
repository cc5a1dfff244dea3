#!/usr/bin/env bash
# Installs what `npm run bench` drives, from Debian packages: nginx (nginx-light where the release
# still has it), wrk, the distribution registry, skopeo, openssl (the token server's certificate)
# and rsvg-convert (librsvg2-bin: the bench's SVG charts as PNG); Ceph (mon, osd, radosgw, ceph-common) for the
# cluster measures' shared S3 store (scripts/rgw.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../scripts/apt-ensure.sh" install-bench-deps \
  docker-registry=docker-registry skopeo=skopeo wrk=wrk 'nginx=nginx-light|nginx' openssl=openssl rsvg-convert=librsvg2-bin \
  ceph-mon=ceph-mon ceph-osd=ceph-osd radosgw=radosgw radosgw-admin=radosgw ceph=ceph-common monmaptool=ceph-common
