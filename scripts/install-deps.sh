#!/usr/bin/env bash
# Installs the system packages quickdraw needs on a fresh Debian 12 machine, and only
# those that are missing (so repeated `make` runs stay fast and offline).
#   build: clang + llvm (the XDP program), libelf-dev, zlib1g-dev, pkg-config (libbpf-sys)
#   lab:   iproute2 (netns, veth), ethtool (checksum offload), nginx (the HTTPS target),
#          curl (a second, independent TLS client for the demo),
#          python3 (the datapath tests inject raw frames from inside the lab)
set -euo pipefail

packages=(clang llvm libelf-dev zlib1g-dev pkg-config make iproute2 ethtool nginx curl ca-certificates python3)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d 101: the nginx package must not start the system's own nginx; the lab
    # runs its own instance, with its own config, inside the lab namespace.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
