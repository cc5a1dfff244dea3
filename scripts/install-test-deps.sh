#!/usr/bin/env bash
# Installs the real peers that the end-to-end tests (test/e2e) run against, from Debian packages:
# the distribution registry, skopeo, containerd (with ctr) and openssl (the token server's cert).
# Idempotent: does nothing when every tool is already on PATH. Uses sudo only when not root.
set -euo pipefail

# tool on PATH -> Debian package that provides it
declare -A PACKAGE_OF=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [containerd]=containerd
  [ctr]=containerd
  [openssl]=openssl
)

missing=()
for tool in "${!PACKAGE_OF[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    pkg="${PACKAGE_OF[$tool]}"
    case " ${missing[*]-} " in
      *" $pkg "*) ;;
      *) missing+=("$pkg") ;;
    esac
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: docker-registry, skopeo, containerd, ctr and openssl are present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-test-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-test-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends ca-certificates "${missing[@]}"

for tool in "${!PACKAGE_OF[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-test-deps: $tool still missing" >&2; exit 1; }
done
echo "install-test-deps: done"
