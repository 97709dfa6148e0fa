#!/usr/bin/env bash
# Installs the Debian packages the test bed needs (see ../shared/TESTBED.md); a no-op when present.
set -euo pipefail
packages=(docker.io docker-registry docker-compose busybox-static rsync e2fsprogs mount util-linux iproute2 curl debootstrap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-bed: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi
