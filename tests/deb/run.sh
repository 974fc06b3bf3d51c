#!/usr/bin/env bash
# The Debian package, as an operator installs it: built with cargo-deb from the
# release binary (stripped by cargo-deb), installed with dpkg, the centre started
# with its unit's own command line (no systemd in CI: ExecStart from the installed
# unit, with the data directory and a loopback port given on top), /healthz
# answered; then purged, leaving nothing behind.
#
#   tests/deb/run.sh            (needs target/release/scanwatch; run as root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
fail() { echo "deb: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "dpkg -i needs root"
[ -x target/release/scanwatch ] || fail "build the release binary first"
command -v cargo-deb >/dev/null || fail "cargo-deb is missing: cargo install cargo-deb --locked (scripts/test.sh does)"
if dpkg -s scanwatch >/dev/null 2>&1; then fail "a scanwatch package is already installed here"; fi

work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    dpkg --purge scanwatch >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

deb="$(cargo deb -p scanwatch --no-build --strip --output "$work/" 2>"$work/cargo-deb.err" | tail -1)" \
    || { cat "$work/cargo-deb.err" >&2; fail "cargo deb failed"; }
[ -f "$deb" ] || fail "cargo deb wrote no package ($deb)"
dpkg-deb --info "$deb" > "$work/info"
grep -q '^ Package: scanwatch$' "$work/info" || fail "package name"
grep -q '^ Depends: .*libpcap0.8' "$work/info" || fail "libpcap is not among the dependencies: $(grep Depends "$work/info")"
dpkg-deb --contents "$deb" > "$work/contents"
for f in ./usr/bin/scanwatch ./lib/systemd/system/scanwatch-server.service \
    ./lib/systemd/system/scanwatch-sensor.service ./etc/scanwatch/server.toml \
    ./etc/scanwatch/sensor.toml ./usr/share/doc/scanwatch/deploy.md; do
    grep -q " $f\$" "$work/contents" || fail "$f is not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles > "$work/conffiles"
grep -qx /etc/scanwatch/server.toml "$work/conffiles" || fail "server.toml is not a conffile"

dpkg -i "$deb" >/dev/null || fail "dpkg -i refused the package"
bin=/usr/bin/scanwatch
size=$(stat -c %s "$bin")
built=$(stat -c %s target/release/scanwatch)
# Stripped: no debug sections, and far smaller than the build with debuginfo.
if readelf -S "$bin" | grep -q '\.debug_info'; then fail "the installed binary has debuginfo"; fi
[ "$size" -lt $((built / 3)) ] || fail "the installed binary ($size bytes) is not much smaller than the build ($built)"
"$bin" --version >/dev/null || fail "the installed binary does not run"

# The unit's command line, as systemd would run it, from the installed files.
exec_start="$(sed -n 's/^ExecStart=//p' /lib/systemd/system/scanwatch-server.service)"
[ -n "$exec_start" ] || fail "no ExecStart in the installed unit"
read -r -a cmd <<< "$exec_start"
[ "${cmd[0]}" = "$bin" ] || fail "the unit runs ${cmd[0]}, not $bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${cmd[@]}" --data "$work/data" --listen "127.0.0.1:$port" > "$work/server.out" 2>&1 &
pid=$!
ok=""
for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" > "$work/health" 2>/dev/null; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.out" >&2; fail "the centre exited"; }
    sleep 0.2
done
[ -n "$ok" ] || { cat "$work/server.out" >&2; fail "no /healthz answer in 20 s"; }
kill -TERM "$pid"
wait "$pid" || fail "the centre did not stop cleanly on SIGTERM"
pid=""

dpkg --purge scanwatch >/dev/null || fail "dpkg --purge failed"
[ ! -e "$bin" ] || fail "$bin is left after the purge"
[ ! -e /etc/scanwatch/server.toml ] || fail "the conffile is left after the purge"
echo "deb: $(basename "$deb"): $((size / 1024 / 1024)) MiB installed (stripped; the build with debuginfo is $((built / 1024 / 1024)) MiB); the unit's ExecStart answered /healthz; purged clean"
echo "deb: 1 passed, 0 failed"
