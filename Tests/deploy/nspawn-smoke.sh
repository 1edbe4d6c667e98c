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

cp "$deploy/popgate.service" "$deploy/popgate-pop3.socket" "$deploy/popgate-pop3s.socket" "$work/units/"
cp "$here/probe.py" "$here/fake-popgate.py" "$work/opt/"

if [ -n "${POPGATE_BIN:-}" ]; then
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

cat > "$work/units/popgate.service.d/50-test.conf" <<EOF
[Service]
ExecStart=
ExecStart=$exec_start
WatchdogSec=2s
EOF

# The container's /etc starts empty: keep the first-boot wizard from waiting for a keyboard.
ln -s /dev/null "$work/units/systemd-firstboot.service"

cat > "$work/units/popgate-test.target" <<'EOF'
[Unit]
Description=PopGate deploy smoke test
Requires=sysinit.target sockets.target popgate-pop3.socket popgate-pop3s.socket popgate-probe.service
After=sysinit.target sockets.target
EOF

# Installs the configuration the way deploy/README.md says: sysusers user, root:popgate 0640.
cat > "$work/opt/setup.sh" <<'EOF'
#!/bin/sh
set -eu
systemd-sysusers
install -d -m 0750 -o root -g popgate /etc/popgate /etc/popgate/tls
install -m 0640 -o root -g popgate /opt/popgate-test/etc-popgate/popgate.yaml /etc/popgate/popgate.yaml
install -m 0644 -o root -g root /opt/popgate-test/etc-popgate/tls/fullchain.pem /etc/popgate/tls/fullchain.pem
install -m 0640 -o root -g popgate /opt/popgate-test/etc-popgate/tls/privkey.pem /etc/popgate/tls/privkey.pem
EOF
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

echo "nspawn-smoke: booting a container with the units ($mode daemon) ..."
set +e
timeout 200 systemd-nspawn --quiet --register=no --keep-unit --directory=/ --volatile=yes \
    --private-network --machine="popgate-smoke-$$" \
    --bind-ro="$work/units:/etc/systemd/system" \
    --bind-ro="$deploy/popgate.sysusers.conf:/etc/sysusers.d/popgate.conf" \
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
