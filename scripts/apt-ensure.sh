#!/usr/bin/env bash
# Installs Debian packages for tools that are missing, and nothing when all are present.
# Usage: apt-ensure.sh LABEL TOOL=PACKAGE[|FALLBACK] ...   (FALLBACK: used when PACKAGE is not in
# this release's archive; TOOL is a command found on PATH or in /usr/sbin, or an absolute path when
# a same-named command elsewhere on PATH must not count). Idempotent; uses sudo only when not root; package services are not
# started during the install (tests and benchmarks run their own instances).
set -euo pipefail
label=$1
shift

has() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

tools=()
missing=()
for pair in "$@"; do
  tool=${pair%%=*}
  pkg=${pair#*=}
  tools+=("$tool")
  if ! has "$tool"; then
    case " ${missing[*]-} " in
      *" $pkg "*) ;;
      *) missing+=("$pkg") ;;
    esac
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "$label: ${tools[*]} present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "$label: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

"${SUDO[@]}" apt-get update

packages=()
for spec in "${missing[@]}"; do
  pkg=${spec%%|*}
  if [ "$pkg" != "$spec" ] && ! apt-cache show "$pkg" >/dev/null 2>&1; then pkg=${spec#*|}; fi
  packages+=("$pkg")
done

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

echo "$label: installing ${packages[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends ca-certificates "${packages[@]}"

for tool in "${tools[@]}"; do
  has "$tool" || { echo "$label: $tool still missing" >&2; exit 1; }
done
echo "$label: done"
