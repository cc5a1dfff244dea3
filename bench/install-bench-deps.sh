#!/usr/bin/env bash
# Installs what `npm run bench` drives, from Debian packages: nginx (nginx-light where the release still has it),
# wrk, the distribution registry, skopeo and openssl (the token server's certificate). Idempotent: does nothing
# when every tool is already there. Uses sudo only when not root. The nginx service is not started by the install (the bench runs its own nginx).
set -euo pipefail

has() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

# tool -> Debian package that provides it
declare -A PACKAGE_OF=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [wrk]=wrk
  [nginx]=nginx-light
  [openssl]=openssl
)

missing=()
for tool in "${!PACKAGE_OF[@]}"; do
  if ! has "$tool"; then
    pkg="${PACKAGE_OF[$tool]}"
    case " ${missing[*]-} " in
      *" $pkg "*) ;;
      *) missing+=("$pkg") ;;
    esac
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-bench-deps: docker-registry, skopeo, wrk, nginx and openssl are present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-bench-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

"${SUDO[@]}" apt-get update

# nginx-light is gone from newer Debian releases: fall back to plain nginx there.
for i in "${!missing[@]}"; do
  if [ "${missing[$i]}" = nginx-light ] && ! apt-cache show nginx-light >/dev/null 2>&1; then
    missing[$i]=nginx
  fi
done

# Keep the package's service from starting (and taking port 80) during the install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  made_policy=1
fi
cleanup() {
  if [ "$made_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

echo "install-bench-deps: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends ca-certificates "${missing[@]}"

for tool in "${!PACKAGE_OF[@]}"; do
  has "$tool" || { echo "install-bench-deps: $tool still missing" >&2; exit 1; }
done
echo "install-bench-deps: done"
