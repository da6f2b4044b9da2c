#!/usr/bin/env bash
# Installs the peers the benchmark compares sluice with; idempotent, run as root.
#  - rsyslog: the Debian package (conflicts with syslog-ng-core, so only one can be installed).
#    It must not become this machine's system logger: any rsyslogd the install starts is stopped.
#  - syslog-ng (and loggen, the load client, shipped in the same package): syslog-ng-core and the
#    shared libraries it needs that are not installed, unpacked with `dpkg -x` into
#    bench/.peers/syslog-ng/ and run from there; nothing is installed system-wide for it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

here="$(cd "$(dirname "$0")" && pwd)"
dest="$(cd "$here/.." && pwd)/.peers/syslog-ng"

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (apt-get install)" >&2
  exit 1
fi

# Package lists may be missing on a fresh machine: apt-cache would then know no candidate.
# (Output captured first: with pipefail, `grep -q` closing the pipe early would read as a failure.)
policy="$(apt-cache policy rsyslog syslog-ng-core)"
if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
  apt-get update
fi

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]; }

# --- rsyslog ---------------------------------------------------------------------------
if ! installed rsyslog; then
  running_before="$(pgrep -x rsyslogd || true)"
  apt-get install -y --no-install-recommends rsyslog
  # The package's init script may start the daemon (not where policy-rc.d forbids it).
  # Stop only what the install started: a logger that was already running stays.
  for pid in $(pgrep -x rsyslogd || true); do
    if ! grep -qx "$pid" <<<"$running_before"; then
      echo "install.sh: stopping rsyslogd $pid started by the package install"
      kill "$pid" || true
    fi
  done
  if command -v update-rc.d >/dev/null; then update-rc.d rsyslog disable >/dev/null 2>&1 || true; fi
fi
rsyslog_version="$(rsyslogd -v)"
echo "rsyslog: ${rsyslog_version%%$'\n'*}"

# --- syslog-ng, unpacked ---------------------------------------------------------------
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
lib_path="$dest/usr/lib/syslog-ng:$dest/usr/lib/$multiarch:$dest/lib/$multiarch"

# The library packages a package depends on (first alternative of each Depends line).
lib_depends() {
  apt-cache depends "$1" | sed -n 's/^ *|\{0,1\}Depends: \(lib[^ <>]*\)$/\1/p' | sed 's/:any$//'
}

if [ ! -x "$dest/usr/sbin/syslog-ng" ] || [ ! -x "$dest/usr/bin/loggen" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # apt-get download runs as _apt when it can; give it a folder it may write to.
  if id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
  wanted=(syslog-ng-core)
  queue=(syslog-ng-core)
  while [ "${#queue[@]}" -gt 0 ]; do
    pkg="${queue[0]}"
    queue=("${queue[@]:1}")
    for dep in $(lib_depends "$pkg"); do
      if ! installed "$dep" && [[ " ${wanted[*]} " != *" $dep "* ]]; then
        wanted+=("$dep")
        queue+=("$dep")
      fi
    done
  done
  echo "install.sh: downloading ${wanted[*]}"
  (cd "$work" && apt-get download "${wanted[@]}")
  rm -rf "$dest"
  mkdir -p "$dest"
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest"; done
fi

# Every binary and module must find all its libraries, or the benchmark would fail later.
missing="$(
  for f in "$dest/usr/sbin/syslog-ng" "$dest/usr/bin/loggen" "$dest"/usr/lib/syslog-ng/*/*.so "$dest"/usr/lib/syslog-ng/*/loggen/*.so; do
    LD_LIBRARY_PATH="$lib_path" ldd "$f" | grep 'not found' || true
  done | sort -u
)"
if [ -n "$missing" ]; then
  echo "install.sh: syslog-ng still lacks libraries:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "syslog-ng: $(LD_LIBRARY_PATH="$lib_path" SYSLOGNG_PREFIX="$dest/usr" "$dest/usr/sbin/syslog-ng" --version | head -n1) in $dest"
