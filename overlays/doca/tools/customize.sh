#!/usr/bin/env bash
# canvos-doca: the cheap steps after the DOCA install. Each subcommand is its
# own Dockerfile RUN so that changing extra packages, kernel args or bind
# mounts never re-runs the DOCA install.
#
#   customize.sh extra-packages   apt-install $DOCA_EXTRA_PACKAGES, clean caches
#   customize.sh kernel-args      add $DOCA_KERNEL_ARGS to /etc/cos/bootargs.cfg
#   customize.sh finalize         mkdir $DOCA_BIND_MOUNTS, upgrade-hazard report,
#                                 manifest, install the tools, run verify
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="${CANVOS_DOCA_LIB:-/run/canvos-doca/install/lib.sh}"
# shellcheck source-path=SCRIPTDIR source=../install/lib.sh
. "$LIB"
HOSTPREP_DIR="${CANVOS_DOCA_HOSTPREP:-/run/canvos-doca/hostprep}"
PERSISTENT_PATHS="${CANVOS_DOCA_PERSISTENT_PATHS:-/run/canvos-doca/persistent-paths.txt}"
BOOTARGS="${CANVOS_DOCA_BOOTARGS:-/etc/cos/bootargs.cfg}"
export DEBIAN_FRONTEND=noninteractive

extra_packages() {
  local pkgs
  read -r -a pkgs <<<"${DOCA_EXTRA_PACKAGES:-}"
  mkdir -p "$CANVOS_DOCA_STATE"
  if [ "${#pkgs[@]}" -eq 0 ]; then
    : >"${CANVOS_DOCA_STATE}/extra-packages"
    return 0
  fi
  export_proxies
  log "installing extra packages: ${pkgs[*]}"
  apt-get update -q >/dev/null || die "apt-get update failed before installing extra packages"
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" ||
    die "could not install extra packages: ${pkgs[*]}"
  dpkg-query -W -f='${Package} ${Version}\n' "${pkgs[@]}" >"${CANVOS_DOCA_STATE}/extra-packages"
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log
}

# Kairos' GRUB config sources bootargs.cfg, whose `set baseCmd="..."` line
# is shared by every boot entry. Arguments are appended inside its quotes,
# each only when the same word is not there yet (idempotent), the same way
# CanvOS's own Dockerfile appends systemd.unified_cgroup_hierarchy=1, so
# both edits compose in either order.
kernel_args() {
  local args arg line
  read -r -a args <<<"${DOCA_KERNEL_ARGS:-}"
  mkdir -p "$CANVOS_DOCA_STATE"
  printf '%s\n' "${args[@]}" | sed '/^$/d' >"${CANVOS_DOCA_STATE}/kernel-args"
  [ "${#args[@]}" -gt 0 ] || return 0
  [ -f "$BOOTARGS" ] ||
    die "kernel args '${args[*]}' requested but ${BOOTARGS} does not exist (not a GRUB-based Kairos image?)"
  grep -qE '^[[:space:]]*set baseCmd="[^"]*"' "$BOOTARGS" ||
    die "no 'set baseCmd=\"...\"' line in ${BOOTARGS}: cannot add kernel args '${args[*]}'"
  for arg in "${args[@]}"; do
    line="$(grep -m1 -E '^[[:space:]]*set baseCmd="[^"]*"' "$BOOTARGS")"
    if [[ " ${line#*\"}" == *" ${arg} "* || " ${line#*\"}" == *" ${arg}\""* ]]; then
      continue
    fi
    # Only the first baseCmd line; arg is validated upstream (no quotes,
    # backslashes or $), '|' and '&' are escaped for sed.
    local esc="${arg//|/\\|}"
    esc="${esc//&/\\&}"
    sed -i "0,/^\([[:space:]]*set baseCmd=\"[^\"]*\)\"/s||\1 ${esc}\"|" "$BOOTARGS"
  done
  log "kernel args now: $(grep -m1 -E '^[[:space:]]*set baseCmd=' "$BOOTARGS" | sed 's/^[[:space:]]*//')"
}

# ----------------------------------------------------------------- hazards
# For every file of the DOCA packages and the extra packages (dpkg file lists)
# that lies under a Kairos persistent path: a regular file is an upgrade hazard
# (seeded once into the persistent state, then stale after an upgrade); a path
# that resolves through a symlink into /usr is a stable link (the link itself
# is the only persistent bit, the content is replaced with each image).
hazard_scan() { # -> writes ${CANVOS_DOCA_STATE}/hazards and .../links
  local roots=() root f pkg cur rel part hit
  [ -f "$PERSISTENT_PATHS" ] || die "persistent path list ${PERSISTENT_PATHS} is missing from the build context"
  mapfile -t roots < <(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' -e 's:/*$::' "$PERSISTENT_PATHS")
  [ "${#roots[@]}" -gt 0 ] || die "persistent path list ${PERSISTENT_PATHS} is empty"
  : >"${CANVOS_DOCA_STATE}/hazards"
  : >"${CANVOS_DOCA_STATE}/links"
  while read -r pkg _; do
    while IFS= read -r f; do
      [ -n "$f" ] || continue
      hit=""
      for root in "${roots[@]}"; do
        if [ "$f" = "$root" ] || [[ "$f" == "$root"/* ]]; then
          hit="$root"
          break
        fi
      done
      [ -n "$hit" ] || continue
      # Walk from the persistent root down: the first symlink wins.
      cur="$hit"
      rel="${f#"$hit"}"
      local link=""
      if [ -L "$cur" ]; then link="$cur"; fi
      IFS='/' read -r -a parts <<<"${rel#/}"
      for part in "${parts[@]}"; do
        [ -z "$link" ] || break
        [ -n "$part" ] || continue
        cur="${cur}/${part}"
        if [ -L "$cur" ]; then link="$cur"; fi
      done
      if [ -n "$link" ]; then
        printf '%s %s %s\n' "$link" "$(readlink "$link")" "$pkg" >>"${CANVOS_DOCA_STATE}/links"
      elif [ -f "$f" ]; then
        printf '%s %s %s\n' "$f" "$pkg" "$hit" >>"${CANVOS_DOCA_STATE}/hazards"
      fi
    done < <(dpkg-query -L "$pkg" 2>/dev/null)
  done < <(cat "${CANVOS_DOCA_STATE}/packages" "${CANVOS_DOCA_STATE}/extra-packages")
  sort -u -o "${CANVOS_DOCA_STATE}/hazards" "${CANVOS_DOCA_STATE}/hazards"
  sort -u -k1,1 -o "${CANVOS_DOCA_STATE}/links" "${CANVOS_DOCA_STATE}/links"
}

env_value() { # KEY -> value from state/doca.env
  sed -n "s/^$1=//p" "${CANVOS_DOCA_STATE}/doca.env" | head -n 1
}

write_manifest() {
  local out="${CANVOS_DOCA_SHARE}/manifest.json" k first name version path
  {
    printf '{\n'
    printf '  "schema": 1,\n'
    printf '  "doca_version": %s,\n' "$(json_str "$(env_value DOCA_VERSION)")"
    printf '  "profile": %s,\n' "$(json_str "$(env_value DOCA_PROFILE)")"
    printf '  "profile_version": %s,\n' "$(json_str "$(env_value DOCA_PROFILE_VERSION)")"
    printf '  "ofed_version": %s,\n' "$(json_str "$(env_value OFED_VERSION)")"
    printf '  "source": {"kind": %s, "repo": %s, "key": %s, "os": %s, "arch": %s},\n' \
      "$(json_str "$(env_value DOCA_SOURCE)")" "$(json_str "$(env_value DOCA_REPO)")" \
      "$(json_str "$(env_value DOCA_KEY)")" "$(json_str "$(env_value OS_DIR)")" \
      "$(json_str "$(env_value ARCH_DIR)")"
    printf '  "kernel_policy": %s,\n' "$(json_str "$(env_value KERNEL_POLICY)")"
    printf '  "kernels": %s,\n' "$(json_words "$(env_value KERNELS)")"
    printf '  "image_kernels": %s,\n' "$(json_words "$(env_value IMAGE_KERNELS)")"
    printf '  "packages": ['
    first=1
    while read -r name version; do
      if [ "$first" = 1 ]; then first=0; else printf ','; fi
      printf '\n    {"name": %s, "version": %s, "held": %s}' "$(json_str "$name")" "$(json_str "$version")" \
        "$(apt-mark showhold "$name" | grep -qxF "$name" && echo true || echo false)"
    done <"${CANVOS_DOCA_STATE}/packages"
    printf '\n  ],\n'
    printf '  "dkms": ['
    first=1
    while read -r name version; do
      for k in $(env_value KERNELS); do
        if [ "$first" = 1 ]; then first=0; else printf ','; fi
        printf '\n    {"module": %s, "version": %s, "kernel": %s}' "$(json_str "$name")" "$(json_str "$version")" "$(json_str "$k")"
      done
    done <"${CANVOS_DOCA_STATE}/dkms"
    printf '\n  ],\n'
    printf '  "modules": {'
    first=1
    for k in $(env_value KERNELS); do
      if [ "$first" = 1 ]; then first=0; else printf ','; fi
      printf '\n    %s: %s' "$(json_str "$k")" \
        "$(find "/lib/modules/${k}/updates/dkms" -name '*.ko*' 2>/dev/null | sort | json_lines)"
    done
    printf '\n  },\n'
    printf '  "enabled_units": %s,\n' "$(json_words "$(env_value ENABLED_UNITS)")"
    printf '  "firmware_update_on_boot": false,\n'
    printf '  "ofa_kernel_kept": %s,\n' "$([ -d /usr/src/ofa_kernel ] && echo true || echo false)"
    printf '  "build_tools": {"removed": %s, "kept": %s},\n' \
      "$(json_words "$(env_value BUILD_TOOLS_REMOVED)")" "$(json_words "$(env_value BUILD_TOOLS_KEPT)")"
    printf '  "extra_packages": %s,\n' "$(sed 's/ .*//' "${CANVOS_DOCA_STATE}/extra-packages" 2>/dev/null | json_lines)"
    printf '  "kernel_args": %s,\n' "$(json_lines <"${CANVOS_DOCA_STATE}/kernel-args" 2>/dev/null || printf '[]')"
    printf '  "bind_mounts": %s,\n' "$(json_words "${DOCA_BIND_MOUNTS:-}")"
    printf '  "persistence": {\n'
    printf '    "persistent_paths": %s,\n' "$(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' "$PERSISTENT_PATHS" | json_lines)"
    printf '    "relocated": ['
    first=1
    while read -r from to; do
      if [ "$first" = 1 ]; then first=0; else printf ','; fi
      printf '\n      {"from": %s, "to": %s}' "$(json_str "$from")" "$(json_str "$to")"
    done <"${CANVOS_DOCA_STATE}/relocated"
    printf '\n    ],\n'
    printf '    "stable_links": ['
    first=1
    while read -r path version name; do
      if [ "$first" = 1 ]; then first=0; else printf ','; fi
      printf '\n      {"path": %s, "target": %s, "package": %s}' "$(json_str "$path")" "$(json_str "$version")" "$(json_str "$name")"
    done <"${CANVOS_DOCA_STATE}/links"
    printf '\n    ],\n'
    printf '    "upgrade_hazards": ['
    first=1
    while read -r path name version; do
      if [ "$first" = 1 ]; then first=0; else printf ','; fi
      printf '\n      {"path": %s, "package": %s, "persistent_path": %s}' "$(json_str "$path")" "$(json_str "$name")" "$(json_str "$version")"
    done <"${CANVOS_DOCA_STATE}/hazards"
    printf '\n    ]\n'
    printf '  }\n'
    printf '}\n'
  } >"${out}.tmp"
  mv "${out}.tmp" "$out"

  # The same facts for shell tools (KEY=value, no quoting, never sourced).
  {
    grep -E '^(DOCA_VERSION|DOCA_PROFILE|DOCA_PROFILE_VERSION|OFED_VERSION|KERNELS|ENABLED_UNITS)=' \
      "${CANVOS_DOCA_STATE}/doca.env"
    printf 'DKMS=%s\n' "$(awk '{printf "%s%s/%s", (NR>1?" ":""), $1, $2}' "${CANVOS_DOCA_STATE}/dkms")"
    printf 'PACKAGES=%s\n' "$(awk '{printf "%s%s", (NR>1?" ":""), $1}' "${CANVOS_DOCA_STATE}/packages")"
    printf 'MODULES=%s\n' "$(for k in $(env_value KERNELS); do
      find "/lib/modules/${k}/updates/dkms" -name '*.ko*' -printf '%f\n' 2>/dev/null
    done | sed 's/\.ko.*$//' | sort -u | tr '\n' ' ' | sed 's/ $//')"
  } >"${CANVOS_DOCA_SHARE}/manifest.env"
}

print_report() {
  local n
  n="$(wc -l <"${CANVOS_DOCA_STATE}/hazards")"
  echo "==================== canvos-doca: upgrade-hazard report ===================="
  echo "relocated to immutable paths:"
  awk '{print "  " $1 " -> " $2}' "${CANVOS_DOCA_STATE}/relocated"
  echo "stable links left under persistent paths (content lives in /usr):"
  awk '{print "  " $1 " -> " $2 "  (" $3 ")"}' "${CANVOS_DOCA_STATE}/links"
  echo "upgrade hazards: ${n} file(s) of DOCA/extra packages under Kairos persistent paths"
  awk '{print "  " $1 "  (" $2 ", persistent: " $3 ")"}' "${CANVOS_DOCA_STATE}/hazards"
  echo "bind-mount paths created: ${DOCA_BIND_MOUNTS:-none}"
  echo "============================================================================="
}

finalize() {
  local mounts m
  [ -f "${CANVOS_DOCA_STATE}/doca.env" ] || die "no DOCA install state: the DOCA install step did not run"
  read -r -a mounts <<<"${DOCA_BIND_MOUNTS:-}"
  for m in "${mounts[@]}"; do
    case "$m" in
      /*) mkdir -p "$m" ;;
      *) die "bind mount '${m}' is not an absolute path" ;;
    esac
  done
  [ -f "${CANVOS_DOCA_STATE}/extra-packages" ] || : >"${CANVOS_DOCA_STATE}/extra-packages"
  [ -f "${CANVOS_DOCA_STATE}/kernel-args" ] || : >"${CANVOS_DOCA_STATE}/kernel-args"
  hazard_scan
  write_manifest
  # The tools live in /usr (immutable, replaced with each image).
  install -d "${CANVOS_DOCA_LIBDIR}"
  install -m 0644 "$LIB" "${CANVOS_DOCA_LIBDIR}/lib.sh"
  install -m 0755 "${here}/canvos-doca-verify" /usr/bin/canvos-doca-verify
  install -m 0755 "${HOSTPREP_DIR}/canvos-doca-detect" /usr/bin/canvos-doca-detect
  print_report
  /usr/bin/canvos-doca-verify
  # apt-mark (manifest, verify) regenerates apt's binary caches: drop them.
  rm -f /var/cache/apt/*.bin
}

case "${1:-}" in
  extra-packages) extra_packages ;;
  kernel-args) kernel_args ;;
  finalize) finalize ;;
  *) die "usage: customize.sh extra-packages|kernel-args|finalize" ;;
esac
