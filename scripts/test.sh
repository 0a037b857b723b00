#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine, then runs
# the project's one gate (format, lint, type check, tests).
#
# As root it installs the Debian packages the kernel-side tests use (auditd and
# its tools, crun and busybox for containers, podman for the OCI hooks.d file,
# systemd for `systemd-analyze verify` of the unit). Without root those tests
# skip and say why.
#
# The systemd package (about 15 MB with libsystemd-shared) brings
# systemd-analyze (Debian has no smaller package
# with it). Installed where PID 1 is not systemd it changes nothing that runs:
# the init stays (that is systemd-sysv, not pulled in), and its scripts only
# add system users and unit links. podman (about 90 MB with conmon, iptables
# and the CNI plugins) is used with private storage by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v auditctl >/dev/null 2>&1 || need+=(auditd)
command -v crun >/dev/null 2>&1 || need+=(crun)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "contid test: installing ${need[*]}"
    apt-get update -qq
    # auditd's package would start the daemon where an init system runs; the
    # tests start their own with a private config, so keep it from starting.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "contid test: not root, so not installing ${need[*]}; kernel tests will skip"
  fi
fi

npm ci --no-audit --no-fund
npm run check
