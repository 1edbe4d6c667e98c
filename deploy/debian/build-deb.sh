#!/usr/bin/env bash
# Builds popgate_<version>_amd64.deb with dpkg-deb from a release binary (`make deb` runs it).
#
#   deploy/debian/build-deb.sh BINARY OUTDIR
#
# The version is Sources/popgate/Version.swift's popGateVersion, the one `popgate --version` prints;
# the script refuses a binary that prints another. Depends: comes from dpkg-shlibdeps.
set -euo pipefail

binary=$1
outdir=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/deploy/debian"

version=$(sed -n 's/^let popGateVersion = "\([^"]*\)"$/\1/p' "$root/Sources/popgate/Version.swift")
[ -n "$version" ] || { echo "build-deb: no popGateVersion in Sources/popgate/Version.swift" >&2; exit 1; }
printed=$("$binary" --version | head -1)
if [ "$printed" != "popgate $version" ]; then
    echo "build-deb: $binary --version says \"$printed\", Version.swift says $version: rebuild" >&2
    exit 1
fi
grep -qx 'ExecStart=/usr/sbin/popgate .*' "$root/deploy/popgate.service" \
    || { echo "build-deb: deploy/popgate.service's ExecStart= is not /usr/sbin/popgate" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/popgate"
umask 022

# Files, owned by root (dpkg-deb --root-owner-group); modes set explicitly.
install -D -m 0755 "$binary" "$stage/usr/sbin/popgate"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/sbin/popgate"
install -D -m 0644 -t "$stage/lib/systemd/system" \
    "$root/deploy/popgate.service" "$root/deploy/popgate-pop3.socket" "$root/deploy/popgate-pop3s.socket"
install -D -m 0644 "$root/deploy/popgate.sysusers.conf" "$stage/usr/lib/sysusers.d/popgate.conf"
# Group and mode (root:popgate 0640) are set by postinst, once the group exists.
install -D -m 0644 "$root/conf/popgate.yaml" "$stage/etc/popgate/popgate.yaml"
install -D -m 0644 "$root/deploy/fail2ban/filter.d/popgate.conf" "$stage/etc/fail2ban/filter.d/popgate.conf"

install -d -m 0755 "$stage/usr/share/man/man8" "$stage/usr/share/man/man5"
gzip -9n -c "$root/docs/man/popgate.8" > "$stage/usr/share/man/man8/popgate.8.gz"
gzip -9n -c "$root/docs/man/popgate.yaml.5" > "$stage/usr/share/man/man5/popgate.yaml.5.gz"

install -d -m 0755 "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
# bash-completion sources the file: no #! line (the parser writes one).
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' > "$stage/usr/share/bash-completion/completions/popgate"
"$binary" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_popgate"
"$binary" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/popgate.fish"
chmod 0644 "$stage"/usr/share/bash-completion/completions/popgate "$stage"/usr/share/zsh/vendor-completions/_popgate \
    "$stage"/usr/share/fish/vendor_completions.d/popgate.fish

doc="$stage/usr/share/doc/popgate"
install -D -m 0644 "$here/copyright" "$doc/copyright"
# deploy/README.md is the target of the units' Documentation=.
install -D -m 0644 "$root/deploy/README.md" "$doc/README.md"
install -D -m 0644 "$root/deploy/fail2ban/jail.d/popgate.conf" "$doc/examples/fail2ban/jail.d/popgate.conf"
# A native package's changelog, generated from the version (one source).
date=$(git -C "$root" log -1 --format=%cD 2>/dev/null || date -R)
printf 'popgate (%s) unstable; urgency=medium\n\n  * PopGate %s.\n\n -- PopGate maintainers <maintainers@users.noreply.r-seed-85640966.example>  %s\n' \
    "$version" "$version" "$date" | gzip -9n > "$doc/changelog.gz"
install -D -m 0644 "$here/lintian-overrides" "$stage/usr/share/lintian/overrides/popgate"

# Control area.
install -d -m 0755 "$stage/DEBIAN"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
printf '/etc/popgate/popgate.yaml\n/etc/fail2ban/filter.d/popgate.conf\n' > "$stage/DEBIAN/conffiles"
chmod 0644 "$stage/DEBIAN/conffiles"

# dpkg-shlibdeps wants a debian/control next to it.
mkdir -p "$work/debian"
printf 'Source: popgate\n\nPackage: popgate\nArchitecture: amd64\n' > "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O "popgate/usr/sbin/popgate" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
    "$here/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

mkdir -p "$outdir"
deb="$outdir/popgate_${version}_amd64.deb"
SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s) \
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
