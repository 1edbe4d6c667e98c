#!/usr/bin/env bash
# Checks the .deb `make deb` built, without installing it:
# - lintian reports no error and no warning (overrides: deploy/debian/lintian-overrides, each justified);
# - the package version is Sources/popgate/Version.swift's, and the packaged binary's --version says so;
# - every file the package promises is there: binary in /usr/sbin, units, sysusers, conffiles,
#   gzipped man pages (valid for man(1)), bash/zsh/fish completions, copyright, changelog, fail2ban;
# - the units' ExecStart= runs the packaged binary.
#
#   Tests/packaging/check-deb.sh popgate_<version>_amd64.deb
set -euo pipefail

deb=$(realpath "$1")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }

version=$(sed -n 's/^let popGateVersion = "\([^"]*\)"$/\1/p' "$root/Sources/popgate/Version.swift")
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version $(dpkg-deb -f "$deb" Version) is not Version.swift's $version"
[ "$(basename "$deb")" = "popgate_${version}_amd64.deb" ] || fail "file name $(basename "$deb")"

echo "check-deb: lintian ..."
set +e
lintian_out=$(lintian --fail-on error,warning --pedantic --info "$deb" 2>&1)
lintian_rc=$?
set -e
printf '%s\n' "$lintian_out" | grep -v '^running with root privileges' || true
[ "$lintian_rc" = 0 ] || fail "lintian reports errors or warnings (above)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
r="$work/root"

for path in usr/sbin/popgate lib/systemd/system/popgate.service lib/systemd/system/popgate-pop3.socket \
            lib/systemd/system/popgate-pop3s.socket usr/lib/sysusers.d/popgate.conf etc/popgate/popgate.yaml \
            usr/share/man/man8/popgate.8.gz usr/share/man/man5/popgate.yaml.5.gz \
            usr/share/bash-completion/completions/popgate usr/share/zsh/vendor-completions/_popgate \
            usr/share/fish/vendor_completions.d/popgate.fish usr/share/doc/popgate/copyright \
            usr/share/doc/popgate/changelog.gz usr/share/doc/popgate/README.md \
            etc/fail2ban/filter.d/popgate.conf usr/share/doc/popgate/examples/fail2ban/jail.d/popgate.conf; do
    [ -f "$r/$path" ] || fail "/$path missing"
done
cmp -s "$r/etc/popgate/popgate.yaml" "$root/conf/popgate.yaml" || fail "/etc/popgate/popgate.yaml is not conf/popgate.yaml"
printf '/etc/popgate/popgate.yaml\n/etc/fail2ban/filter.d/popgate.conf\n' | cmp -s - "$work/control/conffiles" \
    || fail "conffiles: $(cat "$work/control/conffiles")"

first=$("$r/usr/sbin/popgate" --version | head -1)
[ "$first" = "popgate $version" ] || fail "packaged binary says \"$first\""
# No Swift toolchain needed at run time: the Swift runtime is linked in.
if ldd "$r/usr/sbin/popgate" | grep -q -e swift -e 'not found'; then
    fail "the binary needs libraries outside the package's Depends: $(ldd "$r/usr/sbin/popgate" | grep -e swift -e 'not found')"
fi

grep -qx 'ExecStart=/usr/sbin/popgate serve --config /etc/popgate/popgate.yaml' "$r/lib/systemd/system/popgate.service" \
    || fail "popgate.service's ExecStart= does not run /usr/sbin/popgate"

for page in usr/share/man/man8/popgate.8.gz usr/share/man/man5/popgate.yaml.5.gz; do
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$r/$page" 2>&1 >/dev/null || true)
    [ -z "$warnings" ] || fail "man warnings in /$page: $warnings"
    LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$r/$page" 2>/dev/null | grep -q 'popgate' || fail "/$page renders empty"
done

bash -n "$r/usr/share/bash-completion/completions/popgate" || fail "bash completion does not parse"
bash -c "source '$r/usr/share/bash-completion/completions/popgate'; complete -p popgate" >/dev/null \
    || fail "bash completion registers nothing for popgate"
grep -q 'check-config' "$r/usr/share/zsh/vendor-completions/_popgate" || fail "zsh completion lacks the subcommands"
grep -q 'check-config' "$r/usr/share/fish/vendor_completions.d/popgate.fish" || fail "fish completion lacks the subcommands"
if command -v zsh >/dev/null; then zsh -n "$r/usr/share/zsh/vendor-completions/_popgate" || fail "zsh completion does not parse"; fi
if command -v fish >/dev/null; then fish -n "$r/usr/share/fish/vendor_completions.d/popgate.fish" || fail "fish completion does not parse"; fi

echo "check-deb: OK ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB, installed $(dpkg-deb -f "$deb" Installed-Size) KiB)"
