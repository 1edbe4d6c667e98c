#!/usr/bin/env bash
# Boots the shipped units under a real systemd (PID 1 of a throw-away systemd-nspawn container)
# and drives them: socket activation with FileDescriptorName=, Type=notify, watchdog, reload,
# stop/drain exit code, re-activation, journald fields, and — with the stand-in daemon — what the
# sandbox actually permits (see probe.py). Nothing on the host changes: the container's root is
# a tmpfs with the host's /usr mounted read-only (--volatile=yes) and it has its own loopback
# network only (--private-network), so ports 110/995 are the container's.
#
# Usage:  Tests/deploy/nspawn-smoke.sh              # stand-in daemon (fake-popgate.py)
#         POPGATE_BIN=.build/release/popgate Tests/deploy/nspawn-smoke.sh   # the real PopGate
#         POPGATE_DEB=popgate_<version>_amd64.deb Tests/deploy/nspawn-smoke.sh   # the Debian package
#
# With POPGATE_DEB the container installs the package with `apt install ./popgate_*.deb` (offline:
# its dependencies are the host's installed packages) and the probe drives the installed units and
# /usr/sbin/popgate; it also checks what the maintainer scripts did (user, config group, sockets
# enabled but not started) and that `man popgate` and `man popgate.yaml` work. dpkg and apt need
# a writable /usr, the host's /etc and dpkg/apt state: those are overlays of the host's directories
# with the writes going to the temp dir (nspawn cannot overlay the whole root).
# Needs root and systemd-nspawn (Debian: apt-get install systemd-container); exits 77 (skip)
# without them. The real binary needs socket activation + sd_notify support and a usable
# config; the script writes one with a self-signed certificate and a backend on 127.0.0.1:143
# (never contacted: the probe does not log in).
#
# Test-only drop-in (popgate.service.d/50-test.conf): ExecStart= points at the daemon under test
# and WatchdogSec=2s so the watchdog check takes seconds. Everything else is the shipped unit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deploy=$(cd "$here/../../deploy" && pwd)

if [ "$(id -u)" != 0 ] || ! command -v systemd-nspawn >/dev/null; then
    echo "nspawn-smoke: SKIP (needs root and systemd-nspawn from the systemd-container package)"
    exit 77
fi

work=$(mktemp -d /tmp/popgate-nspawn.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/units/popgate.service.d" "$work/opt/etc-popgate/tls" "$work/out"

cp "$here/probe.py" "$here/fake-popgate.py" "$work/opt/"

if [ -n "${POPGATE_DEB:-}" ]; then
    mode=deb
    cp "$POPGATE_DEB" "$work/opt/"
    exec_start=""
elif [ -n "${POPGATE_BIN:-}" ]; then
    mode=real
    cp "$POPGATE_BIN" "$work/opt/popgate"
    exec_start="/opt/popgate-test/popgate serve --config /etc/popgate/popgate.yaml"
else
    mode=fake
    exec_start="/usr/bin/python3 /opt/popgate-test/fake-popgate.py serve --config /etc/popgate/popgate.yaml"
fi

# The binary may link the Swift runtime from the toolchain (no --static-swift-stdlib).
extra_binds=()
if [ "$mode" = real ] && [ -d /opt/swift ]; then
    extra_binds+=(--bind-ro=/opt/swift:/opt/swift)
fi

if [ "$mode" = deb ]; then
    # The package's units, as installed; only the watchdog is shortened.
    printf '[Service]\nWatchdogSec=2s\n' > "$work/units/popgate.service.d/50-test.conf"
else
    cp "$deploy/popgate.service" "$deploy/popgate-pop3.socket" "$deploy/popgate-pop3s.socket" "$work/units/"
    cat > "$work/units/popgate.service.d/50-test.conf" <<EOF
[Service]
ExecStart=
ExecStart=$exec_start
WatchdogSec=2s
EOF
fi

# The container's /etc starts empty: keep the first-boot wizard from waiting for a keyboard.
ln -s /dev/null "$work/units/systemd-firstboot.service"

# Without the package the socket units are there at boot; with it they appear when setup installs it.
if [ "$mode" = deb ]; then sockets=""; else sockets="popgate-pop3.socket popgate-pop3s.socket"; fi
cat > "$work/units/popgate-test.target" <<EOF
[Unit]
Description=PopGate deploy smoke test
Requires=sysinit.target sockets.target $sockets popgate-probe.service
After=sysinit.target sockets.target
EOF

if [ "$mode" = deb ]; then
    # apt install, then record what the maintainer scripts did for the probe, then the test's
    # configuration and certificate, then the sockets (the package enables them, never starts them).
    cat > "$work/opt/setup.sh" <<'EOF'
#!/bin/sh
set -eu
cd /opt/popgate-test
mkdir -p /var/cache/apt/archives/partial /var/log/apt /var/cache/debconf
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ./popgate_*.deb > /out/apt.log 2>&1 \
    || { cat /out/apt.log; exit 1; }
{
    echo "user=$(id -un popgate 2>/dev/null):$(id -gn popgate 2>/dev/null)"
    echo "conffile=$(stat -c '%U:%G %a' /etc/popgate/popgate.yaml)"
    echo "etc_dir=$(stat -c '%U:%G %a' /etc/popgate)"
    for unit in popgate-pop3.socket popgate-pop3s.socket popgate.service; do
        echo "enabled_$unit=$(systemctl is-enabled "$unit" 2>&1 || true)"
        echo "active_$unit=$(systemctl is-active "$unit" 2>&1 || true)"
    done
} > /out/installed.txt
EOF
else
    cat > "$work/opt/setup.sh" <<'EOF'
#!/bin/sh
set -eu
systemd-sysusers
EOF
fi
# Installs the configuration the way deploy/README.md says: sysusers user, root:popgate 0640.
cat >> "$work/opt/setup.sh" <<'EOF'
install -d -m 0750 -o root -g popgate /etc/popgate /etc/popgate/tls
install -m 0640 -o root -g popgate /opt/popgate-test/etc-popgate/popgate.yaml /etc/popgate/popgate.yaml
install -m 0644 -o root -g root /opt/popgate-test/etc-popgate/tls/fullchain.pem /etc/popgate/tls/fullchain.pem
install -m 0640 -o root -g popgate /opt/popgate-test/etc-popgate/tls/privkey.pem /etc/popgate/tls/privkey.pem
EOF
if [ "$mode" = deb ]; then
    echo 'systemctl start --no-block popgate-pop3.socket popgate-pop3s.socket' >> "$work/opt/setup.sh"
fi
chmod 755 "$work/opt/setup.sh"

cat > "$work/units/popgate-test-setup.service" <<'EOF'
[Unit]
Description=PopGate smoke test: user and configuration
DefaultDependencies=no
After=sysinit.target
Before=popgate.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/popgate-test/setup.sh
EOF

cat > "$work/units/popgate-probe.service" <<EOF
[Unit]
Description=PopGate smoke test: probe
Requires=popgate-test-setup.service
After=popgate-test-setup.service popgate-pop3.socket popgate-pop3s.socket systemd-journald.socket
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
Environment=PROBE_MODE=$mode
ExecStart=/usr/bin/python3 /opt/popgate-test/probe.py
TimeoutStartSec=150s
EOF

cat > "$work/opt/etc-popgate/popgate.yaml" <<'EOF'
listeners:
  - name: pop3
    address: 0.0.0.0:110
    tls: starttls
  - name: pop3s
    address: 0.0.0.0:995
    tls: implicit
tls:
  certificate: /etc/popgate/tls/fullchain.pem
  key: /etc/popgate/tls/privkey.pem
backend:
  address: 127.0.0.1:143
  tls: none
EOF
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pop.test" \
    -keyout "$work/opt/etc-popgate/tls/privkey.pem" -out "$work/opt/etc-popgate/tls/fullchain.pem" 2>/dev/null

if [ "$mode" = deb ]; then
    # /etc/systemd/system stays writable (deb-systemd-helper enables units there): the test's units
    # are bound in one by one. The package brings the sysusers file.
    unit_binds=()
    for dir in /usr /etc /var/lib; do
        mkdir -p "$work/upper$dir"
        unit_binds+=(--overlay="$dir:$work/upper$dir:$dir")
    done
    for unit in "$work"/units/*; do
        unit_binds+=(--bind-ro="$unit:/etc/systemd/system/$(basename "$unit")")
    done
else
    unit_binds=(--bind-ro="$work/units:/etc/systemd/system"
                --bind-ro="$deploy/popgate.sysusers.conf:/etc/sysusers.d/popgate.conf")
fi

echo "nspawn-smoke: booting a container with the units ($mode daemon) ..."
set +e
timeout 240 systemd-nspawn --quiet --register=no --keep-unit --directory=/ --volatile=yes \
    --private-network --machine="popgate-smoke-$$" \
    "${unit_binds[@]}" \
    --bind-ro="$work/opt:/opt/popgate-test" \
    --bind="$work/out:/out" \
    "${extra_binds[@]}" \
    --boot -- systemd.unit=popgate-test.target systemd.firstboot=off >"$work/console.log" 2>&1
nspawn_rc=$?
set -e

if [ ! -f "$work/out/result" ]; then
    echo "nspawn-smoke: FAIL: no result from the container (nspawn exit $nspawn_rc); console:"
    tail -40 "$work/console.log"
    exit 1
fi
cat "$work/out/report.txt"
result=$(cat "$work/out/result")
echo "nspawn-smoke: $result ($mode daemon)"
[ "$result" = PASS ]
