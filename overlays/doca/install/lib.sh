#!/usr/bin/env bash
# shellcheck disable=SC2034 # constants for the scripts that source this file
# Shared helpers for the canvos-doca image-build scripts and the tools they
# install (sourced, not run). Pure bash + coreutils + dpkg/apt/kmod: the
# target image may have neither python nor jq.

CANVOS_DOCA_SHARE=/usr/share/canvos-doca
CANVOS_DOCA_LIBDIR=/usr/lib/canvos-doca
CANVOS_DOCA_STATE="${CANVOS_DOCA_SHARE}/state"
CANVOS_DOCA_RELOCATED="${CANVOS_DOCA_LIBDIR}/relocated"
CANVOS_DOCA_SOURCE_LIST=/etc/apt/sources.list.d/canvos-doca.list
CANVOS_DOCA_KEYRING_DIR=/etc/apt/keyrings
CANVOS_DOCA_PIN=/etc/apt/preferences.d/canvos-doca-dkms
# The upstream facts (pipeline/resources/facts.toml, rendered as facts.env):
# bind-mounted during the build, installed in the image for the host tools.
CANVOS_DOCA_FACTS="${CANVOS_DOCA_FACTS:-/run/canvos-doca/facts.env}"
CANVOS_DOCA_IMAGE_FACTS="${CANVOS_DOCA_SHARE}/facts.env"
# Module signing: the certificate is a build-context file (part of the cache
# key), the private key a BuildKit secret mounted at fact
# MODULE_SIGNING_KEY_PATH (never in a layer). The DOCA mirror's apt auth.conf
# is a build secret of the install step only, at fact DOCA_REPO_AUTH_PATH.
# Both paths are defined once in Python (pipeline/buildsecrets.py), which
# renders the mounts, and reach the scripts through facts.env.
CANVOS_DOCA_KEYS=/run/canvos-doca/keys
CANVOS_DOCA_SIGNING_CERT="${CANVOS_DOCA_KEYS}/module-signing.crt"
CANVOS_DOCA_SIGNING_DER="${CANVOS_DOCA_SHARE}/module-signing.der"
CANVOS_DOCA_DKMS_CONF=/etc/dkms/framework.conf.d/canvos-doca.conf
# Where the image keeps a BFB's content (the nodeprep's path links here).
CANVOS_DOCA_BFB_STORE="${CANVOS_DOCA_SHARE}/bfb"
# The image's own Kairos cloud-config (persistent paths, boot-time repairs)
# is fact IMAGE_OEM_CONFIG (pipeline/persistence.py defines it).
APT_OPTS=(-y -q --no-install-recommends
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log() { printf '[canvos-doca] %s\n' "$*" >&2; }
warn() { printf '[canvos-doca] WARNING: %s\n' "$*" >&2; }
# die prints exactly one line that starts with "canvos-doca: ERROR:" so that
# the cause is easy to find in a long BuildKit log.
die() {
  printf 'canvos-doca: ERROR: %s\n' "$*" >&2
  exit 1
}

# ------------------------------------------------------------- KEY=value files

# kv_value FILE KEY: the value of the first KEY= line (files are read, never
# sourced). Returns 1 when the file or the key is missing.
kv_value() {
  local file="$1" key="$2" line
  [ -r "$file" ] || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    if [ "${line%%=*}" = "$key" ] && [ "$line" != "$key" ]; then
      printf '%s\n' "${line#*=}"
      return 0
    fi
  done <"$file"
  return 1
}

# fact KEY: one upstream fact from facts.env; a missing key is a broken render.
fact() {
  kv_value "$CANVOS_DOCA_FACTS" "$1" ||
    die "fact $1 is missing from ${CANVOS_DOCA_FACTS}: render the build context with the same canvos-doca version as these scripts"
}

# state_value KEY: a value the DOCA install recorded in state/doca.env.
state_value() { kv_value "${CANVOS_DOCA_STATE}/doca.env" "$1"; }

# in_words WORD LIST: whether WORD is one of the space-separated LIST.
in_words() { [[ " $2 " == *" $1 "* ]]; }

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

# ------------------------------------------------------------------- kernels

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

# The kernel's compiler line (CONFIG_CC_VERSION_TEXT) from /boot/config-K or
# the headers' .config; empty when neither is there yet.
kernel_cc_text() {
  local k="$1" config
  for config in "/boot/config-${k}" "/lib/modules/${k}/build/.config" "/usr/src/linux-headers-${k}/.config"; do
    if [ -r "$config" ]; then
      sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/p' "$config" | head -n 1
      return 0
    fi
  done
}

# gcc_major TEXT: the GCC major version of a compiler line such as
# "x86_64-linux-gnu-gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0" (-> 12);
# fails for clang or text without a version.
gcc_major() {
  local text="$1" word version=""
  case "$text" in *gcc* | *GCC*) ;; *) return 1 ;; esac
  for word in $text; do
    if [[ "$word" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then version="$word"; fi
  done
  [ -n "$version" ] || return 1
  printf '%s\n' "${version%%.*}"
}

# ---------------------------------------------------------------------- apt

# apt_update [WHAT]: apt-get update that fails on what apt itself only warns
# about: index files that could not be fetched and bad signatures (WHAT names
# the source a signature problem is blamed on).
apt_update() {
  local what="${1:-}" out line
  out="$(mktemp)"
  if ! apt-get update -q >"$out" 2>&1; then
    check_apt_signatures "$out" "$what"
    cat "$out" >&2
    die "apt-get update failed (see the log above)"
  fi
  check_apt_signatures "$out" "$what"
  line="$(grep -m1 -E '^(W|E): Failed to fetch' "$out" || true)"
  if [ -n "$line" ]; then
    cat "$out" >&2
    die "apt-get update could not fetch the package lists (check the proxy build args and mirrors): ${line#*: }"
  fi
  rm -f "$out"
}

# check_apt_signatures LOG [WHAT]: die on a signature problem in an apt log.
check_apt_signatures() {
  local out="$1" what="${2:-}" line
  line="$(grep -E 'NO_PUBKEY|BADSIG|EXPKEYSIG|is not signed|GPG error|signatures were invalid|signatures couldn.t be verified' "$out" | head -n 1 || true)"
  if [ -n "$line" ]; then
    cat "$out" >&2
    die "bad signature: ${what:-an apt source is not signed by its key}: ${line}"
  fi
}

# Drop apt's lists, caches and logs (nothing of the build's package traffic stays).
apt_clean() {
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log
}

# Installed packages, one name per line (sorted).
installed_packages() { dpkg-query -W -f='${Package}\n' | sort -u; }

# --------------------------------------------------------------- toolchain

# install_toolchain K WORK: kernel headers for K, the GCC major version K was
# built with (CONFIG_CC_VERSION_TEXT), dkms and make. `gcc` is that compiler
# for this build only, through a shim directory first in PATH and in apt's
# DPkg::Path (package scripts and the headers' DKMS autoinstall hook build
# with it too); the image's default gcc stays. Configure module signing first:
# the hook may build modules. Sets:
#   TOOLCHAIN_HEADERS  the header package
#   TOOLCHAIN_GCC      e.g. gcc-12
#   TOOLCHAIN_CC_TEXT  the kernel's compiler line
#   TOOLCHAIN_DPKG_PATH  PATH for dpkg (apt -o DPkg::Path=...)
#   TOOLCHAIN_REBUILD  1 when the headers came before the compiler was known
#                      (modules the hook built then must be built again)
#   TOOLCHAIN_NEW      packages this call installed (see purge_headers)
install_toolchain() {
  local k="$1" work="$2" hint="$3" before text major
  TOOLCHAIN_HEADERS="linux-headers-${k}"
  TOOLCHAIN_REBUILD=0
  TOOLCHAIN_DPKG_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  apt-cache show "$TOOLCHAIN_HEADERS" >/dev/null 2>&1 ||
    die "no ${TOOLCHAIN_HEADERS} in the image's package sources for kernel ${k}: use a base image whose kernel headers are still published, or pick a DOCA release that supports this kernel (check the DOCA/kernel pairing in the DOCA release notes)"
  before="${work}/toolchain.before"
  installed_packages >"$before"
  text="$(kernel_cc_text "$k")"
  if [ -z "$text" ]; then
    # No /boot/config-K: the headers carry the kernel's .config.
    apt-get install "${APT_OPTS[@]}" "$TOOLCHAIN_HEADERS" >/dev/null ||
      die "could not install ${TOOLCHAIN_HEADERS}"
    text="$(kernel_cc_text "$k")"
    TOOLCHAIN_REBUILD=1
  fi
  [ -n "$text" ] || die "kernel ${k} names no compiler (CONFIG_CC_VERSION_TEXT in /boot/config-${k} or its headers' .config): cannot pick the compiler for its modules"
  major="$(gcc_major "$text")" ||
    die "kernel ${k} was built with '${text}', not GCC: canvos-doca builds DKMS modules with the GCC version the kernel was built with"
  TOOLCHAIN_CC_TEXT="$text"
  TOOLCHAIN_GCC="gcc-${major}"
  apt-cache show "$TOOLCHAIN_GCC" >/dev/null 2>&1 ||
    die "kernel ${k} was built with GCC ${major} ('${text}') but ${TOOLCHAIN_GCC} is not in the image's package sources: use a base image whose release ships ${TOOLCHAIN_GCC}"
  log "kernel ${k} was built with '${text}': its modules are built with ${TOOLCHAIN_GCC}"
  mkdir -p "${work}/cc"
  ln -sf "/usr/bin/${TOOLCHAIN_GCC}" "${work}/cc/gcc"
  ln -sf "/usr/bin/${TOOLCHAIN_GCC}" "${work}/cc/cc"
  export PATH="${work}/cc:${PATH}"
  TOOLCHAIN_DPKG_PATH="${work}/cc:${TOOLCHAIN_DPKG_PATH}"
  if ! apt-get install "${APT_OPTS[@]}" -o "DPkg::Path=${TOOLCHAIN_DPKG_PATH}" \
    dkms make kmod "$TOOLCHAIN_GCC" "$TOOLCHAIN_HEADERS"; then
    report_failed_dkms_builds "$k" "$hint"
    die "could not install the build toolchain (dkms make kmod ${TOOLCHAIN_GCC} ${TOOLCHAIN_HEADERS})"
  fi
  installed_packages | comm -13 "$before" - >"${work}/toolchain.new"
  mapfile -t TOOLCHAIN_NEW <"${work}/toolchain.new"
}

# Purge the kernel headers if install_toolchain brought them, with what only
# they needed; prints the purged package. Headers are build-only: /lib/modules
# is read-only on Kairos, nothing rebuilds on a node, and the GPU Operator's
# driver container brings its own. The compiler stays: dkms depends on it.
purge_headers() {
  in_words "$TOOLCHAIN_HEADERS" "${TOOLCHAIN_NEW[*]}" || return 0
  apt-get purge -y -q "$TOOLCHAIN_HEADERS" >/dev/null
  apt-get autoremove -y -q --purge >/dev/null
  printf '%s\n' "$TOOLCHAIN_HEADERS"
}

# ----------------------------------------------------------- module signing

# configure_module_signing WORK: point DKMS at the signing key. With the
# certificate in the build context (keys/module-signing.crt) the private key
# must arrive as the build secret; otherwise DKMS generates a throwaway pair
# inside WORK, which is deleted with it. Either way no private key is ever
# written to the image. Sets SIGNING_MODE (key | throwaway).
configure_module_signing() {
  local work="$1" key cert secret
  secret="$(fact MODULE_SIGNING_KEY_PATH)"
  if [ -f "$CANVOS_DOCA_SIGNING_CERT" ] || [ -s "$secret" ]; then
    [ -f "$CANVOS_DOCA_SIGNING_CERT" ] ||
      die "a module-signing key was given as a build secret but the context has no certificate keys/module-signing.crt: pass the certificate with the key"
    [ -s "$secret" ] ||
      die "keys/module-signing.crt is in the build context but the module-signing private key did not arrive as a build secret: pass the key with the certificate"
    command -v openssl >/dev/null 2>&1 || apt-get install "${APT_OPTS[@]}" openssl >/dev/null ||
      die "could not install openssl to check the module-signing key"
    # Never echo the key or openssl's view of it: only whether it parses.
    openssl pkey -in "$secret" -noout -passin pass: >/dev/null 2>&1 ||
      die "the module-signing private key is not an unencrypted PEM private key (sign-file cannot prompt for a passphrase)"
    cert="${work}/signing/module-signing.der"
    mkdir -p "${work}/signing"
    openssl x509 -in "$CANVOS_DOCA_SIGNING_CERT" -outform DER -out "$cert" 2>/dev/null ||
      openssl x509 -inform DER -in "$CANVOS_DOCA_SIGNING_CERT" -outform DER -out "$cert" 2>/dev/null ||
      die "keys/module-signing.crt is not an X.509 certificate (PEM or DER)"
    if [ "$(openssl x509 -inform DER -in "$cert" -noout -pubkey 2>/dev/null)" != \
      "$(openssl pkey -in "$secret" -pubout -passin pass: 2>/dev/null)" ]; then
      die "the module-signing private key does not belong to keys/module-signing.crt"
    fi
    key="$secret"
    SIGNING_MODE=key
  else
    key="${work}/signing/throwaway.key"
    cert="${work}/signing/throwaway.der"
    mkdir -p "${work}/signing"
    SIGNING_MODE=throwaway
  fi
  SIGNING_CERT="$cert"
  mkdir -p "$(dirname "$CANVOS_DOCA_DKMS_CONF")"
  printf 'mok_signing_key=%s\nmok_certificate=%s\n' "$key" "$cert" >"$CANVOS_DOCA_DKMS_CONF"
}

# Remove the signing configuration and every private key a DKMS build may
# have generated in its default places (DKMS >= 3: /var/lib/dkms/mok.key;
# Ubuntu's update-secureboot-policy: /var/lib/shim-signed/mok/MOK.priv).
unconfigure_module_signing() {
  local f
  rm -f "$CANVOS_DOCA_DKMS_CONF"
  rmdir --ignore-fail-on-non-empty "$(dirname "$CANVOS_DOCA_DKMS_CONF")" 2>/dev/null || true
  for f in /var/lib/dkms/mok.key /var/lib/shim-signed/mok/MOK.priv; do
    if [ -e "$f" ]; then
      rm -f "$f"
      log "removed the generated private key ${f}"
    fi
  done
}

# Normalised certificate serial (upper-case hex, no colons or leading zeros),
# the way modinfo's sig_key names the signer.
cert_serial() { openssl x509 -inform DER -in "$1" -noout -serial | sed 's/^serial=//; s/://g; s/^0*//' | tr 'a-f' 'A-F'; }
module_sig_key() { modinfo -k "$2" -F sig_key "$1" 2>/dev/null | sed 's/://g; s/^0*//' | tr 'a-f' 'A-F'; }

# ------------------------------------------------------------------ systemd

# enable_unit UNIT: enable UNIT for boot by vendor links
# /usr/lib/systemd/system/<WantedBy>.wants/UNIT (multi-user.target when the
# unit names none). /usr/lib is replaced with each image; links under the
# persistent /etc/systemd would linger after an upgrade drops the unit.
# Returns 1 when the unit file is not in the image.
enable_unit() {
  local unit="$1" unit_path="" wanted target d
  for d in /usr/lib/systemd/system /lib/systemd/system /etc/systemd/system; do
    if [ -e "${d}/${unit}" ]; then
      unit_path="${d}/${unit}"
      break
    fi
  done
  [ -n "$unit_path" ] || return 1
  wanted="$(sed -n 's/^WantedBy=//p' "$unit_path" | tr ' ' '\n' | sed '/^$/d')"
  [ -n "$wanted" ] || wanted=multi-user.target
  for target in $wanted; do
    mkdir -p "/usr/lib/systemd/system/${target}.wants"
    ln -sfn "../${unit}" "/usr/lib/systemd/system/${target}.wants/${unit}"
  done
}

# vendor_wants_link UNIT: the first /usr/lib (or /lib) <target>.wants/UNIT
# link, empty when there is none. `systemctl is-enabled` only counts /etc
# links for units with an [Install] section, so this is what "enabled for
# boot" means for the image's vendor links.
vendor_wants_link() {
  find /usr/lib/systemd/system /lib/systemd/system -path "*.wants/$1" 2>/dev/null | head -n 1
}

# ---------------------------------------------------------------------- DKMS

dkms_installed() { # NAME VERSION KERNEL
  dkms status -m "$1" -v "$2" -k "$3" 2>/dev/null | grep -q ': installed'
}

# Every module source DKMS knows ("name version" per line, sorted).
dkms_registered() {
  local src version
  for src in /var/lib/dkms/*/*/source; do
    [ -e "$src" ] || continue
    version="$(basename "$(dirname "$src")")"
    printf '%s %s\n' "$(basename "$(dirname "$(dirname "$src")")")" "$version"
  done | sort -u
}

# dkms_failed NAME VERSION KERNEL HINT: the one DKMS failure report.
dkms_failed() {
  find "/var/lib/dkms/$1/$2" -name make.log -exec tail -n 40 {} \; 1>&2 2>/dev/null || true
  die "DKMS module $1/$2 failed to build for kernel $3: $4"
}

# A DKMS build that failed inside a package script: name module and kernel.
report_failed_dkms_builds() { # KERNEL HINT
  local name version
  while read -r name version; do
    dkms_installed "$name" "$version" "$1" || dkms_failed "$name" "$version" "$1" "$2"
  done < <(dkms_registered)
}

# build_dkms_modules KERNEL LIST HINT: build every "name version" of LIST for
# KERNEL that is not installed for it yet (all of them again when
# TOOLCHAIN_REBUILD=1); fail naming module and kernel.
build_dkms_modules() {
  local k="$1" list="$2" hint="$3" name version
  while read -r name version; do
    [ -n "$name" ] || continue
    log "DKMS: ${name}/${version} for kernel ${k}"
    if [ "${TOOLCHAIN_REBUILD:-0}" = 1 ] || ! dkms_installed "$name" "$version" "$k"; then
      dkms install --force -m "$name" -v "$version" -k "$k" || dkms_failed "$name" "$version" "$k" "$hint"
    fi
    dkms_installed "$name" "$version" "$k" ||
      die "DKMS module ${name}/${version} is not installed for kernel ${k} after the build"
  done <"$list"
  depmod -a "$k"
}

# The build trees DKMS keeps are build-only (modules and per-kernel copies stay).
dkms_drop_build_trees() {
  local name version
  while read -r name version; do
    [ -n "$name" ] && rm -rf "/var/lib/dkms/${name}/${version}/build"
  done <"$1"
}

# Rebuild the initramfs of kernel K the Kairos way (dracut, /boot/initrd link).
rebuild_initramfs() {
  local k="$1" out
  if command -v dracut >/dev/null 2>&1; then
    log "dracut: /boot/initrd-${k}"
    out="$(mktemp)"
    dracut -f "/boot/initrd-${k}" "$k" >"$out" 2>&1 || {
      tail -n 20 "$out" >&2
      die "dracut failed for kernel ${k}"
    }
    rm -f "$out" /var/tmp/dracut.* 2>/dev/null || true
    ln -sfn "initrd-${k}" /boot/initrd
  elif command -v update-initramfs >/dev/null 2>&1; then
    update-initramfs -u -k "$k"
  else
    warn "no dracut or update-initramfs: initramfs not rebuilt (CanvOS rebuilds it later)"
  fi
}

# ---------------------------------------------------------------- JSON (no jq)

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
