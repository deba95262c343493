#!/usr/bin/env bash
# shellcheck disable=SC2034 # constants for the scripts that source this file
# Shared helpers for the canvos-doca image-build scripts (sourced, not run).
# Everything here is pure bash + coreutils + dpkg/apt: the target image may
# have neither python nor jq.

CANVOS_DOCA_SHARE=/usr/share/canvos-doca
CANVOS_DOCA_LIBDIR=/usr/lib/canvos-doca
CANVOS_DOCA_STATE="${CANVOS_DOCA_SHARE}/state"
CANVOS_DOCA_RELOCATED="${CANVOS_DOCA_LIBDIR}/relocated"
CANVOS_DOCA_SOURCE_LIST=/etc/apt/sources.list.d/canvos-doca.list
CANVOS_DOCA_KEYRING_DIR=/etc/apt/keyrings
CANVOS_DOCA_PIN=/etc/apt/preferences.d/canvos-doca-dkms

log() { printf '[canvos-doca] %s\n' "$*" >&2; }
warn() { printf '[canvos-doca] WARNING: %s\n' "$*" >&2; }
# die prints exactly one line that starts with "canvos-doca: ERROR:" so that
# the cause is easy to find in a long BuildKit log.
die() {
  printf 'canvos-doca: ERROR: %s\n' "$*" >&2
  exit 1
}

# Map the proxy build args (upper case, what CanvOS passes) to the lower-case
# variables apt and most tools read.
export_proxies() {
  local upper lower value
  for upper in HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    lower="${upper,,}"
    value="${!lower:-${!upper:-}}"
    if [ -n "$value" ]; then
      export "${lower}=${value}" "${upper}=${value}"
    fi
  done
}

# Kernels installed in the image, oldest first. A directory only counts when
# it holds a kernel's module tree (modules.order or a kernel/ dir), so stray
# leftovers such as an empty updates/ tree do not become targets.
image_kernels() {
  local dir
  for dir in /lib/modules/*; do
    [ -d "$dir" ] || continue
    if [ -e "$dir/modules.order" ] || [ -d "$dir/kernel" ]; then
      basename "$dir"
    fi
  done | sort -V
}

# The kernel the image boots: the newest one, as CanvOS decides it (it purges
# every other kernel package after the Dockerfile and runs dracut for this one).
newest_kernel() {
  image_kernels | tail -n 1
}

# /etc/os-release -> the DOCA repository's OS directory name.
doca_os_dir() {
  local id version_id
  # shellcheck disable=SC1091
  id="$(. /etc/os-release && printf '%s' "${ID:-}")"
  # shellcheck disable=SC1091
  version_id="$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")"
  case "${id}:${version_id}" in
    ubuntu:22.04 | ubuntu:24.04) printf 'ubuntu%s\n' "$version_id" ;;
    debian:12) printf 'debian12\n' ;;
    *) return 1 ;;
  esac
}

# dpkg architecture -> the DOCA repository's arch directory name (hosts only).
doca_arch_dir() {
  case "$(dpkg --print-architecture)" in
    amd64) printf 'x86_64\n' ;;
    arm64) printf 'arm64-sbsa\n' ;;
    *) return 1 ;;
  esac
}

# --- JSON (no jq in the image) -------------------------------------------------

json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\t'/\\t}"
  s="${s//$'\r'/\\r}"
  s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}

# Lines on stdin -> a JSON array of strings (empty lines skipped).
json_lines() {
  local line first=1
  printf '['
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    if [ "$first" = 1 ]; then first=0; else printf ', '; fi
    json_str "$line"
  done
  printf ']'
}

# Words of $1 -> a JSON array of strings.
json_words() {
  local words
  read -r -a words <<<"${1:-}"
  if [ "${#words[@]}" -eq 0 ]; then
    printf '[]'
    return
  fi
  printf '%s\n' "${words[@]}" | json_lines
}
