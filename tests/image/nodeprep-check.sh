#!/usr/bin/env bash
# nodeprep-check.sh: what the AI-RA-Infra (Spectrum-X) nodeprep checks on an
# immutable (Kairos) root, written for the image tests from the facts in
# ../shared/DOMAIN.md section 7 (not a copy of any nodeprep script).
#
# On a Kairos root the nodeprep installs nothing: it only checks that the
# image already carries what it needs and logs a WARN for each miss. This
# checker prints one line per check, "OK <what>" or "WARN <what>", and a last
# line "SUMMARY <n> OK, <m> WARN". It exits 0 either way (like the nodeprep,
# which warns and goes on); 2 when the root is not immutable.
#
#   nodeprep-check.sh [ENV_FILE]   (default /opt/spectrocloud/nodeprep-env.sh)
#
# ENV_FILE holds the cluster profile's settings, as the real nodeprep's env
# file does (these variable names are this checker's own):
#   BFB_FILE=<file name of the BlueField bootstream>
#   NUM_VFS=<virtual functions per port; >0 needs the IOMMU>
#   NFSORDMA=yes|no
#
# It keeps its own copy of the paths the nodeprep uses (BFB directory, lldpd
# configuration, the Kairos boot config) on purpose and reads nothing of
# canvos-doca: it plays the third-party script, so the image must meet it,
# not the other way round.
#
# In a container nothing runs systemd, so "systemctl enable succeeds" is
# checked as the nodeprep would see it at boot: the unit file exists and a
# .wants link enables it for boot (image vendor links under /usr/lib or /etc).
# shellcheck disable=SC2329 # the check functions are called through expect
set -uo pipefail

env_file="${1:-/opt/spectrocloud/nodeprep-env.sh}"
bfb_dir=/opt/spectrocloud/spcx/bfb
bootargs=/etc/cos/bootargs.cfg
oks=0
warns=0

ok() {
  printf 'OK %s\n' "$*"
  oks=$((oks + 1))
}
warn() {
  printf 'WARN %s\n' "$*"
  warns=$((warns + 1))
}
# expect DESCRIPTION COMMAND...: OK when the command succeeds, else WARN.
expect() {
  local what="$1"
  shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else warn "$what"; fi
}

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

unit_file() {
  local d
  for d in /etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    if [ -f "${d}/$1" ]; then
      printf '%s\n' "${d}/$1"
      return 0
    fi
  done
  return 1
}

# enabled for boot: a <target>.wants/<unit> link that resolves to the unit.
enabled_for_boot() {
  local link
  unit_file "$1" >/dev/null || return 1
  for link in /etc/systemd/system/*.wants/"$1" /usr/lib/systemd/system/*.wants/"$1" /lib/systemd/system/*.wants/"$1"; do
    [ -L "$link" ] && [ -e "$link" ] && return 0
  done
  return 1
}

# The kernel the host boots: in a container `uname -r` is the build host's,
# so the newest kernel of the image (the one Kairos boots) is the target.
target_kernel() { find /lib/modules -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1; }

boot_cmdline() { sed -n 's/^[[:space:]]*set baseCmd="\([^"]*\)".*$/\1/p' "$bootargs" 2>/dev/null | head -n 1; }

lldpd_staged() {
  local f=/etc/lldpd.d/rcp-lldpd.conf
  grep -qx "configure system hostname ." "$f" && grep -qx "configure lldp portidsubtype iframe" "$f"
}

modprobe_has() { modprobe -c 2>/dev/null | grep -qxF "$1"; }

# Whether every module named is listed in some modules-load.d file.
load_staged() {
  local mod f listed=""
  for f in /etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf \
    /lib/modules-load.d/*.conf /etc/modules; do
    [ -f "$f" ] && listed+="$(sed 's/#.*//; s/[[:space:]]//g' "$f")"$'\n'
  done
  for mod in "$@"; do
    grep -qx "$mod" <<<"$listed" || return 1
  done
}

if [ ! -e /etc/kairos ]; then
  echo "INFO /etc/kairos is missing: not an immutable root, the nodeprep would install instead of checking"
  exit 2
fi
echo "INFO /etc/kairos present: immutable path (check only)"

BFB_FILE=""
NUM_VFS=0
NFSORDMA=no
if [ -f "$env_file" ]; then
  # shellcheck disable=SC1090 # the cluster profile's file, as the nodeprep reads it
  . "$env_file"
else
  warn "settings file ${env_file} present"
fi
kernel="$(target_kernel)"

# Compiler for DOCA DKMS modules.
expect "gcc-12 on PATH" command -v gcc-12

# The profile is doca-all (BlueField hosts), not doca-ofed.
expect "package doca-all installed" installed doca-all

# The BlueField bootstream it flashes with bfb-install (no download here).
if [ -n "$BFB_FILE" ]; then
  expect "BFB ${bfb_dir}/${BFB_FILE} present" test -f "${bfb_dir}/${BFB_FILE}" -a -s "${bfb_dir}/${BFB_FILE}"
else
  warn "BFB file name set in ${env_file}"
fi

# LLDP: installed, enable-able, its configuration pre-staged.
expect "package lldpd installed" installed lldpd
expect "systemctl enable lldpd (unit present and enabled for boot)" enabled_for_boot lldpd.service
expect "lldpd configuration pre-staged (/etc/lldpd.d/rcp-lldpd.conf: system hostname, portidsubtype)" lldpd_staged

# VFs need the IOMMU, configured through the Kairos boot arguments.
if [ "${NUM_VFS:-0}" -gt 0 ]; then
  cmdline="$(boot_cmdline)"
  expect "IOMMU passthrough (iommu=pt) in the Kairos boot arguments" grep -qw -- "iommu=pt" <<<"$cmdline"
  expect "IOMMU switched on (intel_iommu=on or amd_iommu=on) in the Kairos boot arguments" \
    grep -qwE -- "(intel|amd)_iommu=on" <<<"$cmdline"
  expect "modprobe config has 'options ib_core netns_mode=0'" modprobe_has "options ib_core netns_mode=0"
fi

# NFS over RDMA.
if [ "$NFSORDMA" = yes ]; then
  expect "package nfs-common installed" installed nfs-common
  expect "package mlnx-nfsrdma-dkms installed" installed mlnx-nfsrdma-dkms
  for mod in rpcrdma xprtrdma svcrdma; do
    expect "module ${mod} loadable (modinfo -k ${kernel})" modinfo -k "$kernel" "$mod"
  done
  expect "rpcrdma xprtrdma svcrdma pre-staged to load at boot (modules-load.d)" load_staged rpcrdma xprtrdma svcrdma
fi

# BlueField and NIC tools it runs on both paths.
expect "systemctl enable rshim (unit present and enabled for boot)" enabled_for_boot rshim.service
for tool in bfb-install mst mlxconfig flint lspci setpci; do
  expect "${tool} on PATH" command -v "$tool"
done
for pkg in mft netplan.io pv psmisc; do
  expect "package ${pkg} installed" installed "$pkg"
done

echo "SUMMARY ${oks} OK, ${warns} WARN"
exit 0
