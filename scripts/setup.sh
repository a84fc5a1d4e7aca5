#!/usr/bin/env bash
# Installs what bareon and its tests need on Debian, then makes sure a Docker daemon answers.
# Idempotent: when everything is present it only checks, in a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  docker.io mmdebstrap qemu-utils qemu-system-x86 ovmf gdisk fdisk dosfstools mtools e2fsprogs
  xfsprogs btrfs-progs zstd pigz xorriso bmap-tools binutils sbsigntool grub-common grub-pc-bin grub-efi-amd64-bin
  iptables ca-certificates openssl openssh-client curl iproute2 xz-utils util-linux cpio squashfs-tools time podman netavark aardvark-dns
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || { echo "setup: missing packages ${missing[*]}; run as root or install them" >&2; exit 1; }
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# dockerd on its unix socket only: an unauthenticated TCP port would give every local user root.
# (The remote-Docker test puts TLS with client certificates in front of it, on a port of its own.)
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "setup: no Docker daemon answers and only root can start one" >&2; exit 1; }
  echo "setup: starting dockerd"
  nohup dockerd -H unix:///var/run/docker.sock >/var/log/bareon-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/bareon-dockerd.log" >&2; tail -20 /var/log/bareon-dockerd.log >&2; exit 1; }
fi

# Podman: the podman test tier starts its Docker-compatible service for its own run (test/setup/podman.ts).
# Where a container cannot raise its rlimits (some CI sandboxes), Podman needs explicit ones.
if [ "$(id -u)" = 0 ] && [ ! -e /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  printf '# Written by bareon setup: explicit rlimits for containers.\n[containers]\ndefault_ulimits = ["nproc=4096:4096", "nofile=4096:4096"]\n' >/etc/containers/containers.conf
fi
echo "setup: ready (docker $(docker version -f '{{.Server.Version}}'), $(podman --version))"
