#!/usr/bin/env bash
# canvos-doca: install NVIDIA DOCA-Host into a Kairos/CanvOS image for the
# image's own kernel. Runs as ONE Dockerfile RUN step (the expensive, cached
# one); every input comes from the DOCA_* build args baked into the rendered
# Dockerfile block and the facts file. See overlays/doca/README.md.
#
# Inputs (environment):
#   DOCA_VERSION DOCA_PROFILE DOCA_REPO_URL DOCA_SOURCE DOCA_KEY_FILE
#   DOCA_PACKAGES      packages of the DOCA repository installed with the
#                      profile (space-separated names, may be empty)
#   DOCA_CONTEXT_DIR   build-context dir of the overlays (for the key path)
# Read-only mounts provided by the Dockerfile block:
#   /run/canvos-doca/install         these scripts
#   /run/canvos-doca/facts.env       upstream facts (profiles, repo layout, ...)
#   /run/canvos-doca/keys            <context>/<dir>/keys (pinned DOCA key,
#                                    module-signing certificate)
#   /run/canvos-doca/airgap          <context>/<dir>/airgap (offline DOCA source)
#   fact MODULE_SIGNING_KEY_PATH     build secret (only when signing)
#   fact DOCA_REPO_AUTH_PATH         build secret under apt's auth.conf.d (only
#                                    for a DOCA mirror that needs a login): apt
#                                    reads it itself; nothing here copies or
#                                    prints it
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "${here}/lib.sh"

AIRGAP_MOUNT=/run/canvos-doca/airgap
FW_UPDATER=/opt/mellanox/mlnx-fw-updater/mlnx_fw_updater.pl
DKMS_HINT="this DOCA release may not support this kernel (pin a DOCA/kernel pair that DOCA's release notes list)"

main() {
  read_inputs
  pick_target_kernel
  WORK="$(mktemp -d /tmp/canvos-doca.XXXXXX)"
  installed_packages >"${WORK}/pkgs.initial"
  setup_repository
  install_build_toolchain
  install_profile
  build_modules
  enable_services
  clean_up
  write_state
  rm -rf "$WORK"
  log "DOCA ${DOCA_VERSION} installed for kernel ${TARGET_KERNEL}"
}

# ---------------------------------------------------------------- inputs

read_inputs() {
  export DEBIAN_FRONTEND=noninteractive
  export_proxies
  : "${DOCA_VERSION:?DOCA_VERSION build arg is empty}"
  : "${DOCA_PROFILE:?DOCA_PROFILE build arg is empty}"
  DOCA_REPO_URL="${DOCA_REPO_URL:-$(fact DOCA_DEFAULT_REPO_URL)}"
  DOCA_REPO_URL="${DOCA_REPO_URL%/}"
  DOCA_SOURCE="${DOCA_SOURCE:-online}"
  DOCA_KEY_FILE="${DOCA_KEY_FILE:-}"
  DOCA_CONTEXT_DIR="${DOCA_CONTEXT_DIR:-canvos-doca}"
  read -r -a DOCA_PKGS <<<"${DOCA_PACKAGES:-}"
  local profiles pattern
  profiles="$(fact DOCA_PROFILES)"
  in_words "$DOCA_PROFILE" "$profiles" || die "unknown DOCA profile '${DOCA_PROFILE}' (known: ${profiles})"
  case "$DOCA_SOURCE" in
    online | repo-dir | repo-deb) ;;
    *) die "unknown DOCA source '${DOCA_SOURCE}' (online, repo-dir or repo-deb)" ;;
  esac
  pattern="$(fact DOCA_VERSION_PATTERN)"
  [[ "$DOCA_VERSION" =~ $pattern ]] ||
    die "DOCA version '${DOCA_VERSION}' is not an exact version such as 3.2.1 (aliases move)"
  local id version_id arch
  # shellcheck disable=SC1091
  id="$(. /etc/os-release && printf '%s' "${ID:-?}")"
  # shellcheck disable=SC1091
  version_id="$(. /etc/os-release && printf '%s' "${VERSION_ID:-?}")"
  OS_DIR="${id}${version_id}"
  in_words "$OS_DIR" "$(fact DOCA_SUPPORTED_OS)" ||
    die "unsupported OS '${id} ${version_id}': DOCA-Host images need one of $(fact DOCA_SUPPORTED_OS)"
  arch="$(dpkg --print-architecture)"
  ARCH_DIR="$(kv_value "$CANVOS_DOCA_FACTS" "DOCA_REPO_ARCH_${arch}")" ||
    die "unsupported architecture '${arch}': DOCA-Host repositories exist for $(sed -n 's/^DOCA_REPO_ARCH_\([^=]*\)=.*/\1/p' "$CANVOS_DOCA_FACTS" | tr '\n' ' ')hosts"
}

pick_target_kernel() {
  mapfile -t ALL_KERNELS < <(image_kernels)
  [ "${#ALL_KERNELS[@]}" -gt 0 ] || die "no kernel in the image's /lib/modules: the base image must carry its kernel"
  TARGET_KERNEL="$(newest_kernel)"
  log "DOCA ${DOCA_VERSION} profile ${DOCA_PROFILE} from ${DOCA_SOURCE} for ${OS_DIR}/${ARCH_DIR}"
  if [ "${#DOCA_PKGS[@]}" -gt 0 ]; then log "DOCA packages with the profile: ${DOCA_PKGS[*]}"; fi
  log "image kernels: ${ALL_KERNELS[*]}; target (newest, the one CanvOS keeps): ${TARGET_KERNEL}"
  log "build host kernel (ignored): $(uname -r)"
}

# ---------------------------------------------------------------- repo
# The distribution's lists first (CA certificates for an https DOCA
# repository are fetched with apt's own transport), then the DOCA source is
# checked on its own (its own lists dir): a bad signature or a missing
# version fails here, before minutes of toolchain installs. The source is
# only enabled for the install step.

fetch() { # URL DEST -> apt's own transport (proxies, CA store, auth.conf.d)
  /usr/lib/apt/apt-helper download-file "$1" "$2" >"${WORK}/fetch.log" 2>&1
}

# explain_login LOG: an HTTP 401/403 from the DOCA repository means a login is
# missing or refused; say which, and how to pass one (never what it is).
explain_login() {
  local auth
  grep -qE '\b(401|403)\b|Unauthorized|Forbidden' "$1" || return 0
  auth="$(fact DOCA_REPO_AUTH_PATH)"
  if grep -q 'protocol is not encrypted' "$1"; then
    die "the DOCA repository ${REPO_URI} asks for a login, and apt sends the one of --doca-repo-auth over plain http only to a machine written with its protocol: write 'machine http://HOST ...' (apt_auth.conf(5)), or use an https mirror"
  fi
  if [ -s "$auth" ]; then
    die "the DOCA repository ${REPO_URI} refused the login of the auth.conf given with --doca-repo-auth (HTTP $(grep -oE '\b(401|403)\b' "$1" | head -n 1)): check its machine, login and password"
  fi
  die "the DOCA repository ${REPO_URI} asks for a login (HTTP $(grep -oE '\b(401|403)\b' "$1" | head -n 1)): pass an apt auth.conf (machine HOST login USER password PASS) with --doca-repo-auth (Dagger: doca_repo_auth), a build secret"
}

setup_repository() {
  apt_update
  if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
    apt-get install "${APT_OPTS[@]}" ca-certificates >/dev/null || die "could not install ca-certificates"
  fi
  mkdir -p "$CANVOS_DOCA_KEYRING_DIR"
  find_signing_key
  case "$DOCA_SOURCE" in
    online) online_source ;;
    repo-dir | repo-deb) airgap_source ;;
  esac
  if grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' "$KEY_SRC"; then
    KEYRING="${CANVOS_DOCA_KEYRING_DIR}/canvos-doca.asc"
  else
    KEYRING="${CANVOS_DOCA_KEYRING_DIR}/canvos-doca.gpg"
  fi
  install -m 0644 "$KEY_SRC" "$KEYRING"
  printf 'deb [signed-by=%s] %s ./\n' "$KEYRING" "$REPO_URI" >"${WORK}/doca.list"
  log "DOCA source: ${REPO_URI} (key: ${KEY_ORIGIN})"
  preflight_doca_source
}

find_signing_key() {
  KEY_SRC=""
  KEY_ORIGIN=""
  [ -n "$DOCA_KEY_FILE" ] || return 0
  local rel="${DOCA_KEY_FILE#"${DOCA_CONTEXT_DIR}/keys/"}"
  [ "$rel" != "$DOCA_KEY_FILE" ] ||
    die "DOCA key file '${DOCA_KEY_FILE}' must be under '${DOCA_CONTEXT_DIR}/keys/' of the build context"
  KEY_SRC="${CANVOS_DOCA_KEYS}/${rel}"
  [ -f "$KEY_SRC" ] || die "DOCA key file '${DOCA_KEY_FILE}' is missing from the build context"
  KEY_ORIGIN="pinned key ${DOCA_KEY_FILE}"
}

online_source() {
  local layout key_name
  layout="$(fact DOCA_REPO_LAYOUT)"
  layout="${layout//\{base\}/$DOCA_REPO_URL}"
  layout="${layout//\{version\}/$DOCA_VERSION}"
  layout="${layout//\{os_dir\}/$OS_DIR}"
  REPO_URI="${layout//\{arch_dir\}/$ARCH_DIR}"
  if ! fetch "${REPO_URI}InRelease" "${WORK}/InRelease" && ! fetch "${REPO_URI}Release" "${WORK}/Release"; then
    explain_login "${WORK}/fetch.log"
    if grep -qE '404|Not Found' "${WORK}/fetch.log"; then
      die "DOCA version ${DOCA_VERSION} not found: ${REPO_URI} has no Release file (HTTP 404); check the version and OS (${OS_DIR}/${ARCH_DIR})"
    fi
    die "DOCA repository unreachable: ${REPO_URI} ($(grep -m1 -E 'E:|Err|Could not|Failed' "${WORK}/fetch.log" || echo 'no answer'))"
  fi
  if [ -z "$KEY_SRC" ]; then
    key_name="$(fact DOCA_KEY_FILE_NAME)"
    KEY_SRC="${WORK}/${key_name}"
    fetch "${DOCA_REPO_URL}/${key_name}" "$KEY_SRC" ||
      die "cannot download the DOCA signing key ${DOCA_REPO_URL}/${key_name}"
    KEY_ORIGIN="${DOCA_REPO_URL}/${key_name}"
  fi
}

airgap_source() {
  local key_name debs glob
  REPO_DIR="$AIRGAP_MOUNT"
  if [ "$DOCA_SOURCE" = repo-deb ]; then
    glob="$(fact DOCA_LOCAL_REPO_GLOB)"
    mapfile -t debs < <(find "$AIRGAP_MOUNT" -maxdepth 1 -name "$glob" | sort)
    [ "${#debs[@]}" -eq 1 ] || die "expected exactly one ${glob} in the air-gap directory, found ${#debs[@]}"
    # The file name carries the version right after the glob's fixed prefix.
    case "$(basename "${debs[0]}")" in
      "${glob%%\**}${DOCA_VERSION}-"*) ;;
      *) die "DOCA version ${DOCA_VERSION} not in the air-gapped source: $(basename "${debs[0]}") is another version" ;;
    esac
    # Unpacked into a temporary directory instead of dpkg -i: nothing is
    # registered in the image and the whole pool disappears with $WORK.
    dpkg-deb -x "${debs[0]}" "${WORK}/localrepo"
    REPO_DIR="$(find "${WORK}/localrepo" \( -name Packages -o -name Packages.gz -o -name Packages.xz \) -printf '%h\n' | sort | head -n 1)"
    [ -n "$REPO_DIR" ] || die "$(basename "${debs[0]}") holds no apt repository (no Packages index)"
  fi
  [ -e "${REPO_DIR}/InRelease" ] || [ -e "${REPO_DIR}/Release" ] ||
    die "the air-gapped DOCA repository has no Release/InRelease at its top"
  REPO_URI="file:${REPO_DIR}/"
  if [ -z "$KEY_SRC" ]; then
    key_name="$(fact DOCA_KEY_FILE_NAME)"
    KEY_SRC="${REPO_DIR}/${key_name}"
    [ -f "$KEY_SRC" ] || die "no DOCA signing key: supply one (doca.key_file) or ship ${key_name} in the repository"
    KEY_ORIGIN="${key_name} of the air-gapped repository"
  fi
}

preflight_doca_source() {
  local madison
  mkdir -p "${WORK}/lists/partial"
  DOCA_ONLY=(-o "Dir::Etc::SourceList=${WORK}/doca.list" -o "Dir::Etc::SourceParts=${WORK}/none"
    -o "Dir::State::Lists=${WORK}/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
  BAD_SIGNATURE="the DOCA repository ${REPO_URI} is not signed by the configured key (${KEY_ORIGIN})"
  if ! apt-get "${DOCA_ONLY[@]}" update -q >"${WORK}/apt-doca.log" 2>&1; then
    explain_login "${WORK}/apt-doca.log"
    check_apt_signatures "${WORK}/apt-doca.log" "$BAD_SIGNATURE"
    cat "${WORK}/apt-doca.log" >&2
    die "cannot read the DOCA repository ${REPO_URI} (see the apt output above)"
  fi
  check_apt_signatures "${WORK}/apt-doca.log" "$BAD_SIGNATURE"
  # The profile must come from the DOCA source, in the requested version.
  # apt prints a flat source as "<uri without trailing slash> ./ Packages".
  REPO_MATCH="${REPO_URI%/} ./"
  madison="$(apt-cache "${DOCA_ONLY[@]}" madison "$DOCA_PROFILE" 2>/dev/null | grep -F "$REPO_MATCH" || true)"
  [ -n "$madison" ] || die "DOCA version ${DOCA_VERSION} not in the repository: ${REPO_URI} offers no ${DOCA_PROFILE}"
  PROFILE_VERSION="$(printf '%s\n' "$madison" | awk -F'|' 'NR==1 {gsub(/ /, "", $2); print $2}')"
  check_doca_packages_offered
  if [ "$DOCA_SOURCE" = repo-dir ]; then
    case "$PROFILE_VERSION" in
      "${DOCA_VERSION}" | "${DOCA_VERSION}"[-+.~]*) ;;
      *) grep -qsF "$DOCA_VERSION" "${REPO_DIR}/Release" "${REPO_DIR}/InRelease" ||
        die "DOCA version ${DOCA_VERSION} not in the air-gapped repository (it offers ${DOCA_PROFILE} ${PROFILE_VERSION})" ;;
    esac
  fi
}

# doca_packages must come from the DOCA source (online or air-gapped alike:
# both serve the release's whole pool); a distribution package belongs in
# extra_packages.
check_doca_packages_offered() {
  local pkg
  for pkg in "${DOCA_PKGS[@]}"; do
    apt-cache "${DOCA_ONLY[@]}" madison "$pkg" 2>/dev/null | grep -qF "$REPO_MATCH" ||
      die "DOCA package '${pkg}' (doca_packages) is not in the DOCA ${DOCA_VERSION} repository ${REPO_URI}: list only packages of the DOCA release there; distribution packages go in extra_packages"
  done
}

# ---------------------------------------------------------------- toolchain
# From the distribution BEFORE the DOCA source exists, so DOCA's own dkms can
# never be picked, and a missing header package is reported as such. The
# distribution's dkms is held while DOCA installs and DOCA's is pinned out.

install_build_toolchain() {
  log "installing the build toolchain for kernel ${TARGET_KERNEL}"
  configure_module_signing "$WORK"
  install_toolchain "$TARGET_KERNEL" "$WORK" "$DKMS_HINT"
  apt-mark hold dkms >/dev/null
}

# ---------------------------------------------------------------- install
# No side effects: policy-rc.d and a systemctl shim first in apt's DPkg::Path
# (vendor postinsts call systemctl, which fails without systemd; enablement is
# done below with unit links), and the NIC firmware updater diverted to a stub
# for the install with on-boot updates switched off in its configuration.

install_profile() {
  local shim="${WORK}/shim"
  install -m 0644 "${WORK}/doca.list" "$CANVOS_DOCA_SOURCE_LIST"
  printf 'Package: dkms\nPin: release l=%s\nPin-Priority: -1\n' "$(fact DOCA_REPO_LABEL_GLOB)" >"$CANVOS_DOCA_PIN"
  apt_update "$BAD_SIGNATURE"
  apt-cache policy dkms | sed 's/^/[canvos-doca] /' >&2

  mkdir -p "$shim" /etc/mellanox
  printf '#!/bin/sh\necho "[canvos-doca] build-time systemctl call ignored: systemctl $*" >&2\nexit 0\n' >"${shim}/systemctl"
  chmod 0755 "${shim}/systemctl"
  CREATED_POLICY=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    CREATED_POLICY=1
  fi
  touch /etc/mellanox/mlnx-fw-updater.conf
  sed -i '/^RUN_FW_UPDATER_ONBOOT=/d' /etc/mellanox/mlnx-fw-updater.conf
  echo 'RUN_FW_UPDATER_ONBOOT=no' >>/etc/mellanox/mlnx-fw-updater.conf
  dpkg-divert --quiet --local --rename --divert "${FW_UPDATER}.canvos-doca" --add "$FW_UPDATER"
  mkdir -p "$(dirname "$FW_UPDATER")"
  printf '#!/bin/sh\necho "[canvos-doca] NIC firmware update blocked during the image build" >&2\nexit 0\n' >"$FW_UPDATER"
  chmod 0755 "$FW_UPDATER"

  installed_packages >"${WORK}/pkgs.before"
  log "installing ${DOCA_PROFILE} ${PROFILE_VERSION}${DOCA_PKGS[*]:+ with ${DOCA_PKGS[*]}}"
  # apt runs dpkg with its own PATH (DPkg::Path): the shims and the kernel's
  # compiler go there, so postinst DKMS builds use them too.
  if ! PATH="${shim}:${PATH}" RUN_FW_UPDATER_ONBOOT=no apt-get install "${APT_OPTS[@]}" \
    -o "DPkg::Path=${shim}:${TOOLCHAIN_DPKG_PATH}" "$DOCA_PROFILE" "${DOCA_PKGS[@]}"; then
    remove_install_guards
    report_failed_dkms_builds "$TARGET_KERNEL" "$DKMS_HINT"
    die "installing ${DOCA_PROFILE} ${PROFILE_VERSION}${DOCA_PKGS[*]:+ and ${DOCA_PKGS[*]}} failed (see the apt/dkms output above)"
  fi
  remove_install_guards
  record_doca_packages
}

remove_install_guards() {
  rm -f "$FW_UPDATER"
  dpkg-divert --quiet --local --rename --divert "${FW_UPDATER}.canvos-doca" --remove "$FW_UPDATER" || true
  rmdir -p --ignore-fail-on-non-empty "$(dirname "$FW_UPDATER")" 2>/dev/null || true
  if [ "$CREATED_POLICY" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

# DOCA packages = new packages whose installed version comes from the DOCA
# source (a distribution package of the same name does not count).
record_doca_packages() {
  local pkg v
  installed_packages | comm -13 "${WORK}/pkgs.before" - >"${WORK}/pkgs.new"
  : >"${WORK}/doca.pkgs"
  while read -r pkg; do
    v="$(dpkg-query -W -f='${Version}' "$pkg")"
    if apt-cache madison "$pkg" 2>/dev/null | awk -F'|' -v v="$v" '{gsub(/ /, "", $2)} $2 == v {print $3}' | grep -qF "$REPO_MATCH"; then
      echo "$pkg" >>"${WORK}/doca.pkgs"
    fi
  done <"${WORK}/pkgs.new"
  # The profile and doca_packages may already have been present (rebuilds on
  # top); they are DOCA packages all the same (held, relocated, recorded).
  for pkg in "$DOCA_PROFILE" "${DOCA_PKGS[@]}"; do
    grep -qxF "$pkg" "${WORK}/doca.pkgs" || echo "$pkg" >>"${WORK}/doca.pkgs"
  done
  sort -u -o "${WORK}/doca.pkgs" "${WORK}/doca.pkgs"
}

# ---------------------------------------------------------------- modules
# Every DKMS module (whatever package registered it) for the target kernel,
# then the initramfs.

build_modules() {
  dkms_registered >"${WORK}/dkms"
  build_dkms_modules "$TARGET_KERNEL" "${WORK}/dkms" "$DKMS_HINT"
  check_doca_package_modules
  if [ -s "${WORK}/dkms" ] && ! find "/lib/modules/${TARGET_KERNEL}/updates/dkms" -name '*.ko*' 2>/dev/null | grep -q .; then
    die "no DOCA kernel module under /lib/modules/${TARGET_KERNEL}/updates/dkms after the DKMS build"
  fi
  rebuild_initramfs "$TARGET_KERNEL"
}

# Every DKMS source a doca_packages package ships (/usr/src/<dir>/dkms.conf)
# must be registered and installed for the target kernel: a package script
# that skipped its build or its registration fails here, naming module and
# kernel, not on the node.
check_doca_package_modules() {
  local pkg conf dir found name version
  for pkg in "${DOCA_PKGS[@]}"; do
    while read -r conf; do
      dir="$(readlink -f "$(dirname "$conf")")"
      found=""
      while read -r name version; do
        if [ "$(readlink -f "/var/lib/dkms/${name}/${version}/source")" = "$dir" ]; then found="${name}/${version}"; fi
      done <"${WORK}/dkms"
      [ -n "$found" ] ||
        die "DOCA package ${pkg} ships the DKMS source ${dir}, but DKMS registered no module from it: nothing was built for kernel ${TARGET_KERNEL}"
      dkms_installed "${found%/*}" "${found#*/}" "$TARGET_KERNEL" ||
        die "DKMS module ${found} of DOCA package ${pkg} is not installed for kernel ${TARGET_KERNEL}"
      log "DOCA package ${pkg}: DKMS module ${found} installed for kernel ${TARGET_KERNEL}"
    done < <(dpkg-query -L "$pkg" 2>/dev/null | grep -E '^/usr/src/[^/]+/dkms\.conf$' || true)
  done
}

# ---------------------------------------------------------------- services
# Files DOCA packages put under Kairos persistent paths are seeded once into
# the persistent state and then go stale across OS upgrades: move the ones
# with a safe immutable home (README "Upgrade hazards"), then enable openibd
# with a vendor (/usr/lib) link, which an OS upgrade replaces cleanly.

enable_services() {
  mkdir -p "$CANVOS_DOCA_STATE" "$CANVOS_DOCA_RELOCATED"
  : >"${CANVOS_DOCA_STATE}/relocated"
  relocate_persistent_files
  ENABLED_UNITS=""
  if enable_unit openibd.service; then
    ENABLED_UNITS="openibd.service"
    # A stale /etc link from a package script: remove it so the state in the
    # persistent /etc/systemd stays empty.
    rm -f /etc/systemd/system/*.wants/openibd.service
  else
    warn "openibd.service not found: the DOCA stack will not be loaded by openibd at boot"
  fi
}

relocated() { printf '%s %s\n' "$1" "$2" >>"${CANVOS_DOCA_STATE}/relocated"; }

# Move a file or directory under /usr and leave one stable link in its place.
move_behind_link() {
  local dest="${CANVOS_DOCA_RELOCATED}$1"
  mkdir -p "$(dirname "$dest")"
  mv "$1" "$dest"
  ln -s "$dest" "$1"
  relocated "$1" "$dest"
}

# Move a file into an immutable directory that the same tool also reads.
move_into() { # FILE DIR
  mkdir -p "$2"
  mv "$1" "$2/$(basename "$1")"
  relocated "$1" "$2/$(basename "$1")"
}

relocate_persistent_files() {
  local f d
  xargs -r dpkg-query -L <"${WORK}/doca.pkgs" 2>/dev/null | sort -u >"${WORK}/doca.files"
  # Units first (so the enablement link below points at the /usr/lib copy).
  while read -r f; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    case "$f" in
      /etc/systemd/system/*.service | /etc/systemd/system/*.socket | /etc/systemd/system/*.timer | /etc/systemd/system/*.path)
        if [ "$(dirname "$f")" = /etc/systemd/system ]; then move_into "$f" /usr/lib/systemd/system; fi
        ;;
      /etc/modprobe.d/*) move_into "$f" /usr/lib/modprobe.d ;;
      /etc/init.d/*) move_behind_link "$f" ;;
    esac
  done <"${WORK}/doca.files"
  # Whole top-level directories under /opt (e.g. /opt/mellanox).
  while read -r d; do
    if [ -d "$d" ] && [ ! -L "$d" ]; then move_behind_link "$d"; fi
  done < <(grep -E '^/opt/[^/]+$' "${WORK}/doca.files")
}

# ---------------------------------------------------------------- clean-up
# Build-only things go: headers, the DOCA source, lists, caches, logs, DKMS
# build trees and every private key. DOCA is held where it is.

clean_up() {
  OFED_VERSION="$(command -v ofed_info >/dev/null 2>&1 && ofed_info -s 2>/dev/null | head -n 1 | sed 's/:$//' || true)"
  apt-mark unhold dkms >/dev/null
  REMOVED_TOOLS="$(purge_headers)"
  xargs -r apt-mark hold <"${WORK}/doca.pkgs" >/dev/null
  rm -f "$CANVOS_DOCA_SOURCE_LIST" "$KEYRING" "$CANVOS_DOCA_PIN"
  rmdir "$CANVOS_DOCA_KEYRING_DIR" 2>/dev/null || true
  apt_clean
  dkms_drop_build_trees "${WORK}/dkms"
  record_module_signing doca
  unconfigure_module_signing
  rm -rf /var/tmp/dracut.*
}

# The signing certificate the modules carry (key mode): installed in DER for
# `mokutil --import`, its SHA-256 fingerprint and serial recorded.
record_module_signing() {
  mkdir -p "$CANVOS_DOCA_STATE"
  if [ "$SIGNING_MODE" = key ]; then
    install -m 0644 "$SIGNING_CERT" "$CANVOS_DOCA_SIGNING_DER"
    {
      printf 'MODE=key\n'
      printf 'CERTIFICATE=%s\n' "$CANVOS_DOCA_SIGNING_DER"
      printf 'SHA256=%s\n' "$(openssl x509 -inform DER -in "$SIGNING_CERT" -noout -fingerprint -sha256 | sed 's/^.*=//')"
      printf 'SERIAL=%s\n' "$(cert_serial "$SIGNING_CERT")"
      printf 'SUBJECT=%s\n' "$(openssl x509 -inform DER -in "$SIGNING_CERT" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
    } >"${CANVOS_DOCA_STATE}/module-signing"
  else
    printf 'MODE=throwaway\n' >"${CANVOS_DOCA_STATE}/module-signing"
  fi
}

# ---------------------------------------------------------------- manifest
# Line-oriented state for finalize (manifest.json) and the image's tools.

write_state() {
  # shellcheck disable=SC2046 # package names are single words
  dpkg-query -W -f='${Package} ${Version}\n' $(cat "${WORK}/doca.pkgs") >"${CANVOS_DOCA_STATE}/packages"
  cp "${WORK}/dkms" "${CANVOS_DOCA_STATE}/dkms"
  : >"${CANVOS_DOCA_STATE}/doca-packages"
  if [ "${#DOCA_PKGS[@]}" -gt 0 ]; then
    dpkg-query -W -f='${Package} ${Version}\n' "${DOCA_PKGS[@]}" >"${CANVOS_DOCA_STATE}/doca-packages"
  fi
  {
    printf 'DOCA_VERSION=%s\n' "$DOCA_VERSION"
    printf 'DOCA_PROFILE=%s\n' "$DOCA_PROFILE"
    printf 'DOCA_PROFILE_VERSION=%s\n' "$PROFILE_VERSION"
    printf 'DOCA_SOURCE=%s\n' "$DOCA_SOURCE"
    printf 'DOCA_REPO=%s\n' "$REPO_URI"
    printf 'DOCA_KEY=%s\n' "$KEY_ORIGIN"
    printf 'OS_DIR=%s\n' "$OS_DIR"
    printf 'ARCH_DIR=%s\n' "$ARCH_DIR"
    printf 'OFED_VERSION=%s\n' "$OFED_VERSION"
    printf 'KERNEL_POLICY=%s\n' newest
    printf 'KERNELS=%s\n' "$TARGET_KERNEL"
    printf 'IMAGE_KERNELS=%s\n' "${ALL_KERNELS[*]}"
    printf 'KERNEL_CC=%s\n' "$TOOLCHAIN_CC_TEXT"
    printf 'BUILD_GCC=%s\n' "$TOOLCHAIN_GCC"
    printf 'BUILD_GCC_VERSION=%s\n' "$("$TOOLCHAIN_GCC" -dumpfullversion 2>/dev/null || "$TOOLCHAIN_GCC" -dumpversion)"
    printf 'ENABLED_UNITS=%s\n' "$ENABLED_UNITS"
    printf 'OFA_KERNEL=%s\n' "$([ -d /usr/src/ofa_kernel ] && echo yes || echo no)"
    printf 'BUILD_TOOLS_REMOVED=%s\n' "$REMOVED_TOOLS"
    printf 'BUILD_TOOLS_KEPT=%s\n' "dkms ${TOOLCHAIN_GCC} make"
  } >"${CANVOS_DOCA_STATE}/doca.env"
}

main "$@"
