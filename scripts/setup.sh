#!/usr/bin/env bash
# Installs what building scanwatch needs on a fresh Debian machine: a C toolchain
# (for crates that build C) and, when no cargo is present, Debian's Rust. Safe to
# run again. Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v cargo >/dev/null 2>&1 || need_apt+=(cargo rustc)
# libpcap for the sensor's live capture (the pcap crate links it).
dpkg -s libpcap-dev >/dev/null 2>&1 || need_apt+=(libpcap-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# The workspace needs Rust 1.86 or newer (rust-version in Cargo.toml).
ver="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n1.86.0\n' "$ver" | sort -V | head -n1)" != "1.86.0" ]; then
    echo "rustc $ver is older than 1.86; install a newer toolchain (e.g. rustup) and retry" >&2
    exit 1
fi
