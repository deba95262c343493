#!/usr/bin/env bash
# canvos-doca: the cheap steps after the DOCA install. Each subcommand is its
# own Dockerfile RUN so that changing extra packages, kernel args or bind
# mounts never re-runs the DOCA install.
#
#   customize.sh extra-packages   apt-install $DOCA_EXTRA_PACKAGES, build the DKMS
#                                 modules they register, clean caches
#   customize.sh host-items       place the host items of the build context's
#                                 host/ directory: files, units enabled for boot,
#                                 modprobe options, modules to load, the BFB
#   customize.sh kernel-args      add $DOCA_KERNEL_ARGS to /etc/cos/bootargs.cfg
#   customize.sh finalize         mkdir $DOCA_BIND_MOUNTS, the image's Kairos boot
#                                 config, upgrade-hazard report, manifest, install
#                                 the tools and facts, run verify
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="${CANVOS_DOCA_LIB:-/run/canvos-doca/install/lib.sh}"
# shellcheck source-path=SCRIPTDIR source=../install/lib.sh
. "$LIB"
HOSTPREP_DIR="${CANVOS_DOCA_HOSTPREP:-/run/canvos-doca/hostprep}"
HOST_DIR="${CANVOS_DOCA_HOST:-/run/canvos-doca/host}"
PERSISTENT_PATHS="${CANVOS_DOCA_PERSISTENT_PATHS:-/run/canvos-doca/persistent-paths.txt}"
BOOTARGS="${CANVOS_DOCA_BOOTARGS:-/etc/cos/bootargs.cfg}"
export DEBIAN_FRONTEND=noninteractive

# Distribution packages nodeprep would install. A DKMS package installed
# without headers only registers its source ("Module build ... skipped"), so
# every module it registered is then built here for the image kernel, with
# the kernel's compiler and the image's signing key, and the headers go again.
extra_packages() {
  local pkgs work k hint="the package's module does not build for this kernel (pick a package version that supports it)"
  read -r -a pkgs <<<"${DOCA_EXTRA_PACKAGES:-}"
  mkdir -p "$CANVOS_DOCA_STATE"
  : >"${CANVOS_DOCA_STATE}/extra-packages"
  : >"${CANVOS_DOCA_STATE}/extra-dkms"
  [ "${#pkgs[@]}" -gt 0 ] || return 0
  export_proxies
  log "installing extra packages: ${pkgs[*]}"
  apt_update
  apt-get install "${APT_OPTS[@]}" "${pkgs[@]}" || die "could not install extra packages: ${pkgs[*]}"
  dpkg-query -W -f='${Package} ${Version}\n' "${pkgs[@]}" >"${CANVOS_DOCA_STATE}/extra-packages"
  k="$(state_value KERNELS)" || k="$(newest_kernel)"
  dkms_registered | comm -23 - <(sort -u "${CANVOS_DOCA_STATE}/dkms" 2>/dev/null) >"${CANVOS_DOCA_STATE}/extra-dkms"
  if [ -s "${CANVOS_DOCA_STATE}/extra-dkms" ]; then
    work="$(mktemp -d /tmp/canvos-doca.XXXXXX)"
    log "extra packages registered DKMS modules: $(tr '\n' ' ' <"${CANVOS_DOCA_STATE}/extra-dkms")- building them for kernel ${k}"
    configure_module_signing "$work"
    install_toolchain "$k" "$work" "$hint"
    build_dkms_modules "$k" "${CANVOS_DOCA_STATE}/extra-dkms" "$hint"
    rebuild_initramfs "$k"
    purge_headers >/dev/null
    dkms_drop_build_trees "${CANVOS_DOCA_STATE}/extra-dkms"
    unconfigure_module_signing
    rm -rf "$work"
  fi
  apt_clean
}

# ------------------------------------------------------------- host items
# What a host's nodeprep expects beyond DOCA (pipeline/hostitems.py writes the
# lists). Everything lands where an OS upgrade replaces it: units are enabled
# by /usr/lib links, modprobe options and modules to load go to /usr/lib files
# (facts HOST_MODPROBE_FILE, HOST_MODULES_LOAD_FILE), and the BFB's content
# stays in /usr with one link at the path the nodeprep reads (/opt is a Kairos
# persistent path: a copy there would be duplicated into COS_PERSISTENT at
# first boot and never replaced). Each item is recorded in the state for the
# manifest and verify.

# Items of a host list file: comment and blank lines dropped.
host_list() { sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "${HOST_DIR}/$1"; }

host_items() {
  local f
  [ -d "$HOST_DIR" ] || die "no host items directory ${HOST_DIR}: render the build context with the same canvos-doca version as these scripts"
  for f in files.list units.list modprobe.list modules-load.list; do
    [ -f "${HOST_DIR}/${f}" ] || die "host item list ${HOST_DIR}/${f} is missing from the build context"
  done
  mkdir -p "$CANVOS_DOCA_STATE"
  place_host_files
  enable_host_units
  write_host_config "$(fact HOST_MODPROBE_FILE)" modprobe.list host-modprobe options
  write_host_config "$(fact HOST_MODULES_LOAD_FILE)" modules-load.list host-modules-load ""
  check_modules_to_load
  place_bfb
}

# files.list: MODE SHA256 DEST; the content is files/<SHA256>, checked again here.
place_host_files() {
  local mode sha dest src got
  : >"${CANVOS_DOCA_STATE}/host-files"
  while read -r mode sha dest; do
    [[ "$mode" =~ ^[0-7]{3,4}$ ]] || die "host file ${dest}: mode '${mode}' is not octal permission bits (e.g. 0644)"
    [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "host file ${dest}: '${sha}' is not a SHA-256"
    case "$dest" in
      /*/../* | /*/.. | */./* | *//*) die "host file '${dest}': the path must be absolute and normalised" ;;
      /?*) ;;
      *) die "host file '${dest}': the path must be absolute" ;;
    esac
    src="${HOST_DIR}/files/${sha}"
    [ -f "$src" ] || die "host file ${dest}: its content files/${sha} is missing from the build context"
    got="$(sha256sum "$src" | cut -d' ' -f1)"
    [ "$got" = "$sha" ] || die "host file ${dest}: content SHA-256 ${got} is not the listed ${sha}"
    install -D -m "$mode" "$src" "$dest"
    log "host file ${dest} (mode ${mode}, sha256 ${sha})"
    printf '%s %s %s\n' "$mode" "$sha" "$dest" >>"${CANVOS_DOCA_STATE}/host-files"
  done < <(host_list files.list)
}

# units.list: units enabled by vendor links. An /etc/systemd/system link a
# package script made (deb-systemd-helper) goes: /etc/systemd is persistent on
# Kairos, so it would outlive the unit after an upgrade.
enable_host_units() {
  local unit types
  types="$(fact SYSTEMD_UNIT_TYPES)"
  : >"${CANVOS_DOCA_STATE}/host-units"
  while read -r unit _; do
    [[ "$unit" =~ ^[A-Za-z0-9@._:-]+\.(${types// /|})$ ]] ||
      die "unit '${unit}' to enable is not a systemd unit name (e.g. lldpd.service)"
    if [ ! -e "/usr/lib/systemd/system/${unit}" ] && [ ! -e "/lib/systemd/system/${unit}" ] &&
      [ -e "/etc/systemd/system/${unit}" ]; then
      die "unit ${unit} is only under /etc/systemd/system, a Kairos persistent path: place it under /usr/lib/systemd/system"
    fi
    enable_unit "$unit" ||
      die "unit ${unit} to enable is not in the image: add the package that ships it to the extra packages, or place it under /usr/lib/systemd/system as a host file"
    rm -f /etc/systemd/system/*.wants/"${unit}"
    log "unit ${unit} enabled for boot by $(find /usr/lib/systemd/system -path "*.wants/${unit}" | tr '\n' ' ')"
    printf '%s\n' "$unit" >>"${CANVOS_DOCA_STATE}/host-units"
  done < <(host_list units.list)
}

# write_host_config FILE LIST STATE PREFIX: one "PREFIX line" per list item
# (a module name first) into FILE; no file when the list is empty.
write_host_config() {
  local file="$1" list="$2" state="$3" prefix="$4" line
  host_list "$list" | sed 's/[[:space:]]\+/ /g; s/^ //; s/ $//' >"${CANVOS_DOCA_STATE}/${state}"
  rm -f "$file"
  [ -s "${CANVOS_DOCA_STATE}/${state}" ] || return 0
  while read -r line; do
    [[ "$line" =~ ^[A-Za-z0-9_-]+( |$) ]] || die "${list%.list} item '${line}' does not start with a kernel module name"
  done <"${CANVOS_DOCA_STATE}/${state}"
  mkdir -p "$(dirname "$file")"
  {
    printf '# Generated by canvos-doca (host items); replaced with each image.\n'
    sed "s/^/${prefix:+${prefix} }/" "${CANVOS_DOCA_STATE}/${state}"
  } >"$file"
  log "${file}: $(grep -vc '^#' "$file") line(s)"
}

# A module to load at boot that no target kernel has fails the build here,
# naming the module (verify checks the same on the finished image).
check_modules_to_load() {
  local mod k
  while read -r mod; do
    for k in $(state_value KERNELS); do
      modinfo -k "$k" -n "$mod" >/dev/null 2>&1 ||
        die "module ${mod} to load at boot is not available for kernel ${k}: add the package that ships it to the extra packages"
    done
  done <"${CANVOS_DOCA_STATE}/host-modules-load"
}

# bfb/: zero or one *.bfb. Content in CANVOS_DOCA_BFB_STORE, a link at the
# nodeprep's path (restore-links repairs a stale persistent copy at boot).
place_bfb() {
  local bfbs name dir sha
  : >"${CANVOS_DOCA_STATE}/bfb"
  : >"${CANVOS_DOCA_STATE}/host-links"
  mapfile -t bfbs < <(find "${HOST_DIR}/bfb" -maxdepth 1 -type f -name '*.bfb' 2>/dev/null | sort)
  [ "${#bfbs[@]}" -gt 0 ] || return 0
  [ "${#bfbs[@]}" -eq 1 ] || die "more than one BFB in the build context (${bfbs[*]}): give exactly one"
  name="$(basename "${bfbs[0]}")"
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die "BFB file name '${name}' may hold only letters, digits and . _ + -"
  dir="$(fact NODEPREP_BFB_DIR)"
  install -D -m 0644 "${bfbs[0]}" "${CANVOS_DOCA_BFB_STORE}/${name}"
  sha="$(sha256sum "${CANVOS_DOCA_BFB_STORE}/${name}" | cut -d' ' -f1)"
  mkdir -p "$dir"
  ln -sfn "${CANVOS_DOCA_BFB_STORE}/${name}" "${dir}/${name}"
  printf '%s %s %s %s\n' "$name" "$sha" "$(stat -c %s "${CANVOS_DOCA_BFB_STORE}/${name}")" "${dir}/${name}" >"${CANVOS_DOCA_STATE}/bfb"
  printf '%s %s %s\n' "${dir}/${name}" "${CANVOS_DOCA_BFB_STORE}/${name}" bfb >"${CANVOS_DOCA_STATE}/host-links"
  log "BFB ${dir}/${name} -> ${CANVOS_DOCA_BFB_STORE}/${name} (sha256 ${sha})"
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
  local roots=() pkg
  [ -f "$PERSISTENT_PATHS" ] || die "persistent path list ${PERSISTENT_PATHS} is missing from the build context"
  mapfile -t roots < <(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' -e 's:/*$::' "$PERSISTENT_PATHS")
  [ "${#roots[@]}" -gt 0 ] || die "persistent path list ${PERSISTENT_PATHS} is empty"
  : >"${CANVOS_DOCA_STATE}/hazards"
  : >"${CANVOS_DOCA_STATE}/links"
  while read -r pkg _; do
    dpkg-query -L "$pkg" 2>/dev/null | scan_paths "$pkg"
  done < <(cat "${CANVOS_DOCA_STATE}/packages" "${CANVOS_DOCA_STATE}/extra-packages")
  # Host files count like package files; the BFB's link is one of the image's links.
  awk '{print $3}' "${CANVOS_DOCA_STATE}/host-files" | scan_paths host-items
  cat "${CANVOS_DOCA_STATE}/host-links" >>"${CANVOS_DOCA_STATE}/links"
  sort -u -o "${CANVOS_DOCA_STATE}/hazards" "${CANVOS_DOCA_STATE}/hazards"
  sort -u -k1,1 -o "${CANVOS_DOCA_STATE}/links" "${CANVOS_DOCA_STATE}/links"
}

# scan_paths OWNER: classify the paths on stdin (uses roots of hazard_scan).
scan_paths() {
  local owner="$1" f root cur rel part hit link parts
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
    link=""
    if [ -L "$cur" ]; then link="$cur"; fi
    IFS='/' read -r -a parts <<<"${rel#/}"
    for part in "${parts[@]}"; do
      [ -z "$link" ] || break
      [ -n "$part" ] || continue
      cur="${cur}/${part}"
      if [ -L "$cur" ]; then link="$cur"; fi
    done
    if [ -n "$link" ]; then
      printf '%s %s %s\n' "$link" "$(readlink "$link")" "$owner" >>"${CANVOS_DOCA_STATE}/links"
    elif [ -f "$f" ]; then
      printf '%s %s %s\n' "$f" "$owner" "$hit" >>"${CANVOS_DOCA_STATE}/hazards"
    fi
  done
}

# json_records FILE INDENT KEY...: a JSON array with one object per line of
# FILE ("-": stdin), whose whitespace-separated columns are the KEYs' values
# (the last key takes the rest of the line); objects start at INDENT.
json_records() {
  local file="$1" indent="$2" first=1 i cols
  shift 2
  local keys=("$@")
  printf '['
  while read -r -a cols; do
    [ "${#cols[@]}" -gt 0 ] || continue
    if [ "$first" = 1 ]; then first=0; else printf ','; fi
    printf '\n%s{' "$indent"
    for i in "${!keys[@]}"; do
      [ "$i" = 0 ] || printf ', '
      if [ "$i" = $((${#keys[@]} - 1)) ]; then
        printf '"%s": %s' "${keys[$i]}" "$(json_str "${cols[*]:$i}")"
      else
        printf '"%s": %s' "${keys[$i]}" "$(json_str "${cols[$i]:-}")"
      fi
    done
    printf '}'
  done < <(if [ "$file" = - ]; then cat; else cat "$file"; fi)
  printf '\n%s]' "${indent:2}"
}

# "name version" lines -> "name version kernel" for every target kernel.
per_kernel() {
  local name version k
  while read -r name version; do
    [ -n "$name" ] || continue
    for k in $(state_value KERNELS); do printf '%s %s %s\n' "$name" "$version" "$k"; done
  done <"$1"
}

# name version held, for the DOCA packages.
held_packages() {
  local name version
  while read -r name version; do
    printf '%s %s %s\n' "$name" "$version" \
      "$(apt-mark showhold "$name" | grep -qxF "$name" && echo true || echo false)"
  done <"${CANVOS_DOCA_STATE}/packages"
}

write_manifest() {
  local out="${CANVOS_DOCA_SHARE}/manifest.json" k first name sha size path
  {
    printf '{\n'
    printf '  "schema": 1,\n'
    printf '  "doca_version": %s,\n' "$(json_str "$(state_value DOCA_VERSION)")"
    printf '  "profile": %s,\n' "$(json_str "$(state_value DOCA_PROFILE)")"
    printf '  "profile_version": %s,\n' "$(json_str "$(state_value DOCA_PROFILE_VERSION)")"
    printf '  "doca_packages": %s,\n' "$(sed 's/ .*//' "${CANVOS_DOCA_STATE}/doca-packages" 2>/dev/null | json_lines)"
    printf '  "ofed_version": %s,\n' "$(json_str "$(state_value OFED_VERSION)")"
    printf '  "source": {"kind": %s, "repo": %s, "key": %s, "os": %s, "arch": %s},\n' \
      "$(json_str "$(state_value DOCA_SOURCE)")" "$(json_str "$(state_value DOCA_REPO)")" \
      "$(json_str "$(state_value DOCA_KEY)")" "$(json_str "$(state_value OS_DIR)")" \
      "$(json_str "$(state_value ARCH_DIR)")"
    printf '  "kernel_policy": %s,\n' "$(json_str "$(state_value KERNEL_POLICY)")"
    printf '  "kernels": %s,\n' "$(json_words "$(state_value KERNELS)")"
    printf '  "image_kernels": %s,\n' "$(json_words "$(state_value IMAGE_KERNELS)")"
    # held is a JSON boolean, not a string.
    printf '  "packages": %s,\n' "$(held_packages | json_records - '    ' name version held |
      sed 's/"held": "\(true\|false\)"/"held": \1/')"
    printf '  "dkms": %s,\n' "$(per_kernel "${CANVOS_DOCA_STATE}/dkms" | json_records - '    ' module version kernel)"
    printf '  "extra_dkms": %s,\n' "$(per_kernel "${CANVOS_DOCA_STATE}/extra-dkms" | json_records - '    ' module version kernel)"
    printf '  "compiler": {"kernel": %s, "gcc": %s, "version": %s},\n' \
      "$(json_str "$(state_value KERNEL_CC)")" "$(json_str "$(state_value BUILD_GCC)")" \
      "$(json_str "$(state_value BUILD_GCC_VERSION)")"
    printf '  "module_signing": {"mode": %s, "certificate": %s, "sha256": %s, "serial": %s, "subject": %s},\n' \
      "$(json_str "$(signing_value MODE)")" "$(json_str "$(signing_value CERTIFICATE)")" \
      "$(json_str "$(signing_value SHA256)")" "$(json_str "$(signing_value SERIAL)")" \
      "$(json_str "$(signing_value SUBJECT)")"
    printf '  "modules": {'
    first=1
    for k in $(state_value KERNELS); do
      if [ "$first" = 1 ]; then first=0; else printf ','; fi
      printf '\n    %s: %s' "$(json_str "$k")" \
        "$(find "/lib/modules/${k}/updates/dkms" -name '*.ko*' 2>/dev/null | sort | json_lines)"
    done
    printf '\n  },\n'
    printf '  "enabled_units": %s,\n' "$(json_words "$(state_value ENABLED_UNITS)")"
    printf '  "firmware_update_on_boot": false,\n'
    printf '  "ofa_kernel_kept": %s,\n' "$([ -d /usr/src/ofa_kernel ] && echo true || echo false)"
    printf '  "build_tools": {"removed": %s, "kept": %s},\n' \
      "$(json_words "$(state_value BUILD_TOOLS_REMOVED)")" "$(json_words "$(state_value BUILD_TOOLS_KEPT)")"
    printf '  "extra_packages": %s,\n' "$(sed 's/ .*//' "${CANVOS_DOCA_STATE}/extra-packages" 2>/dev/null | json_lines)"
    printf '  "kernel_args": %s,\n' "$(json_lines <"${CANVOS_DOCA_STATE}/kernel-args" 2>/dev/null || printf '[]')"
    printf '  "bind_mounts": %s,\n' "$(json_lines <"${CANVOS_DOCA_STATE}/bind-mounts")"
    printf '  "host_items": {\n'
    printf '    "files": %s,\n' "$(json_records "${CANVOS_DOCA_STATE}/host-files" '      ' mode sha256 path)"
    printf '    "units": %s,\n' "$(json_lines <"${CANVOS_DOCA_STATE}/host-units")"
    printf '    "modprobe_options": %s,\n' "$(json_lines <"${CANVOS_DOCA_STATE}/host-modprobe")"
    printf '    "modules_load": %s\n' "$(json_lines <"${CANVOS_DOCA_STATE}/host-modules-load")"
    printf '  },\n'
    if read -r name sha size path <"${CANVOS_DOCA_STATE}/bfb"; then
      printf '  "bfb": {"name": %s, "sha256": %s, "size": %s, "path": %s, "content": %s},\n' \
        "$(json_str "$name")" "$(json_str "$sha")" "$size" "$(json_str "$path")" \
        "$(json_str "${CANVOS_DOCA_BFB_STORE}/${name}")"
    else
      printf '  "bfb": null,\n'
    fi
    printf '  "persistence": {\n'
    printf '    "persistent_paths": %s,\n' "$(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' "$PERSISTENT_PATHS" | json_lines)"
    printf '    "boot_config": %s,\n' "$(json_str "$CANVOS_DOCA_OEM_CONFIG")"
    printf '    "relocated": %s,\n' "$(json_records "${CANVOS_DOCA_STATE}/relocated" '      ' from to)"
    printf '    "stable_links": %s,\n' "$(json_records "${CANVOS_DOCA_STATE}/links" '      ' path target package)"
    printf '    "upgrade_hazards": %s\n' "$(json_records "${CANVOS_DOCA_STATE}/hazards" '      ' path package persistent_path)"
    printf '  }\n'
    printf '}\n'
  } >"${out}.tmp"
  mv "${out}.tmp" "$out"

  # The same facts for shell tools (KEY=value, no quoting, never sourced).
  {
    grep -E '^(DOCA_VERSION|DOCA_PROFILE|DOCA_PROFILE_VERSION|OFED_VERSION|KERNELS|ENABLED_UNITS)=' \
      "${CANVOS_DOCA_STATE}/doca.env"
    printf 'DKMS=%s\n' "$(cat "${CANVOS_DOCA_STATE}/dkms" "${CANVOS_DOCA_STATE}/extra-dkms" |
      awk '{printf "%s%s/%s", (NR>1?" ":""), $1, $2}')"
    printf 'PACKAGES=%s\n' "$(awk '{printf "%s%s", (NR>1?" ":""), $1}' "${CANVOS_DOCA_STATE}/packages")"
    printf 'MODULES=%s\n' "$(for k in $(state_value KERNELS); do
      find "/lib/modules/${k}/updates/dkms" -name '*.ko*' -printf '%f\n' 2>/dev/null
    done | sed 's/\.ko.*$//' | sort -u | tr '\n' ' ' | sed 's/ $//')"
  } >"${CANVOS_DOCA_SHARE}/manifest.env"
}

signing_value() { kv_value "${CANVOS_DOCA_STATE}/module-signing" "$1" || true; }

# The image's own Kairos cloud-config (kairos-init's 01_extra_binds.yaml
# pattern; immucore appends PERSISTENT_STATE_PATHS of /run/cos/extra-layout.env
# to the defaults at every boot):
# - rootfs.after adds our bind-mount paths to that file. yip's
#   environment_file replaces a key another file already set (the distro
#   extras), so this is a read-modify-write that keeps what is there.
# - initramfs (chrooted into the new root, after the bind mounts) moves a
#   stale persistent copy that hides one of the image's links aside.
write_boot_config() {
  local ours="$1"
  mkdir -p "$(dirname "$CANVOS_DOCA_OEM_CONFIG")"
  {
    cat <<'YAML'
# Generated by canvos-doca at image build time; replaced with each image.
# Runs at every boot, on any host that boots this image, whichever ISO
# installed it and across upgrades.
name: "canvos-doca persistent paths"
stages:
YAML
    if [ -n "$ours" ]; then
      cat <<YAML
  rootfs.after:
    - name: "Add the DOCA stage's bind mounts to the persistent state paths"
      if: '[ ! -f /run/cos/recovery_mode ] && [ ! -e /run/cos/autoreset_mode ] && [ ! -e /run/cos/uki_install_mode ] && [ ! -f /run/cos/live_mode ]'
      commands:
        - |
          env_file=/run/cos/extra-layout.env
          paths=""
          if [ -f "\$env_file" ]; then
            paths="\$(sed -n 's/^PERSISTENT_STATE_PATHS="\{0,1\}\([^"]*\)"\{0,1\}\$/\1/p' "\$env_file")"
          fi
          for p in ${ours}; do
            case " \$paths " in *" \$p "*) ;; *) paths="\${paths:+\$paths }\$p" ;; esac
          done
          mkdir -p /run/cos
          : >>"\$env_file"
          sed -i '/^PERSISTENT_STATE_PATHS=/d' "\$env_file"
          echo "PERSISTENT_STATE_PATHS=\"\$paths\"" >>"\$env_file"
YAML
    fi
    cat <<YAML
  initramfs:
    - name: "Move stale persistent copies aside so the image's links take their place"
      if: '[ -x ${CANVOS_DOCA_LIBDIR}/canvos-doca-restore-links ]'
      commands:
        - ${CANVOS_DOCA_LIBDIR}/canvos-doca-restore-links
YAML
  } >"${CANVOS_DOCA_OEM_CONFIG}.tmp"
  mv "${CANVOS_DOCA_OEM_CONFIG}.tmp" "$CANVOS_DOCA_OEM_CONFIG"
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
  CANVOS_DOCA_OEM_CONFIG="$(fact IMAGE_OEM_CONFIG)"
  [ -f "${CANVOS_DOCA_STATE}/doca.env" ] || die "no DOCA install state: the DOCA install step did not run"
  read -r -a mounts <<<"${DOCA_BIND_MOUNTS:-}"
  for m in "${mounts[@]}"; do
    case "$m" in
      /*) mkdir -p "$m" ;;
      *) die "bind mount '${m}' is not an absolute path" ;;
    esac
  done
  local f
  for f in extra-packages extra-dkms kernel-args host-files host-units host-modprobe host-modules-load host-links bfb; do
    [ -f "${CANVOS_DOCA_STATE}/${f}" ] || : >"${CANVOS_DOCA_STATE}/${f}"
  done
  printf '%s\n' "${mounts[@]}" | sed '/^$/d' >"${CANVOS_DOCA_STATE}/bind-mounts"
  hazard_scan
  write_manifest
  write_boot_config "${mounts[*]}"
  # The tools and the facts they read live in /usr (immutable, replaced with each image).
  install -d "${CANVOS_DOCA_LIBDIR}"
  install -m 0644 "$LIB" "${CANVOS_DOCA_LIBDIR}/lib.sh"
  install -m 0644 "$CANVOS_DOCA_FACTS" "$CANVOS_DOCA_IMAGE_FACTS"
  install -m 0755 "${here}/canvos-doca-restore-links" "${CANVOS_DOCA_LIBDIR}/canvos-doca-restore-links"
  install -m 0755 "${here}/canvos-doca-verify" /usr/bin/canvos-doca-verify
  install -m 0755 "${HOSTPREP_DIR}/canvos-doca-detect" /usr/bin/canvos-doca-detect
  print_report
  /usr/bin/canvos-doca-verify
  # apt-mark (manifest, verify) regenerates apt's binary caches: drop them.
  rm -f /var/cache/apt/*.bin
}

case "${1:-}" in
  extra-packages) extra_packages ;;
  host-items) host_items ;;
  kernel-args) kernel_args ;;
  finalize) finalize ;;
  *) die "usage: customize.sh extra-packages|host-items|kernel-args|finalize" ;;
esac
