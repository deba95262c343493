#!/usr/bin/env bash
# canvos-doca: install NVIDIA DOCA-Host into a Kairos/CanvOS image for the
# image's own kernel. Runs as ONE Dockerfile RUN step (the expensive, cached
# one); every input comes from the DOCA_* build args baked into the rendered
# Dockerfile block. See overlays/doca/README.md for the design.
#
# Inputs (environment):
#   DOCA_VERSION DOCA_PROFILE DOCA_REPO_URL DOCA_SOURCE DOCA_KEY_FILE
#   DOCA_CONTEXT_DIR   build-context dir of the overlays (for the key path)
# Read-only bind mounts provided by the Dockerfile block:
#   /run/canvos-doca/install  these scripts
#   /run/canvos-doca/keys     <context>/<dir>/keys (pinned keys; overlays/keys/.keep)
#   /run/canvos-doca/airgap   <context>/<dir>/airgap (offline DOCA source)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "${here}/lib.sh"

export DEBIAN_FRONTEND=noninteractive
export_proxies

: "${DOCA_VERSION:?DOCA_VERSION build arg is empty}"
: "${DOCA_PROFILE:?DOCA_PROFILE build arg is empty}"
DOCA_REPO_URL="${DOCA_REPO_URL:-https://linux.mellanox.com/public/repo/doca}"
DOCA_REPO_URL="${DOCA_REPO_URL%/}"
DOCA_SOURCE="${DOCA_SOURCE:-online}"
DOCA_KEY_FILE="${DOCA_KEY_FILE:-}"
DOCA_CONTEXT_DIR="${DOCA_CONTEXT_DIR:-canvos-doca}"

KEYS_MOUNT=/run/canvos-doca/keys
AIRGAP_MOUNT=/run/canvos-doca/airgap
WORK="$(mktemp -d /tmp/canvos-doca.XXXXXX)"
APT_OPTS=(-y -q --no-install-recommends
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
FW_UPDATER=/opt/mellanox/mlnx-fw-updater/mlnx_fw_updater.pl
SHIM_DIR="${WORK}/shim"

case "$DOCA_PROFILE" in
  doca-ofed | doca-roce | doca-networking | doca-all | doca-host-basic | doca-basic | \
    doca-ofed-userspace | doca-networking-userspace | doca-all-userspace) ;;
  *) die "unknown DOCA profile '${DOCA_PROFILE}'" ;;
esac
case "$DOCA_SOURCE" in
  online | repo-dir | repo-deb) ;;
  *) die "unknown DOCA source '${DOCA_SOURCE}' (online, repo-dir or repo-deb)" ;;
esac
[[ "$DOCA_VERSION" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] ||
  die "DOCA version '${DOCA_VERSION}' is not an exact version such as 3.2.1 (aliases move)"

# ---------------------------------------------------------------- targets
os_dir="$(doca_os_dir)" || die "unsupported OS '$(. /etc/os-release && printf '%s %s' "${ID:-?}" "${VERSION_ID:-?}")': DOCA-Host images need Ubuntu 22.04/24.04 (or Debian 12 for tests)"
arch_dir="$(doca_arch_dir)" || die "unsupported architecture '$(dpkg --print-architecture)': amd64 or arm64 hosts only"
mapfile -t all_kernels < <(image_kernels)
[ "${#all_kernels[@]}" -gt 0 ] || die "no kernel in the image's /lib/modules: the base image must carry its kernel"
target_kernel="$(newest_kernel)"
targets=("$target_kernel")
log "DOCA ${DOCA_VERSION} profile ${DOCA_PROFILE} from ${DOCA_SOURCE} for ${os_dir}/${arch_dir}"
log "image kernels: ${all_kernels[*]}; target (newest, the one CanvOS keeps): ${target_kernel}"
log "build host kernel (ignored): $(uname -r)"

dpkg-query -W -f='${Package}\n' | sort -u >"${WORK}/pkgs.initial"

# ---------------------------------------------------------------- build tools
# The toolchain and headers come from the distribution BEFORE the DOCA source
# exists, so DOCA's own dkms can never be picked, and a missing header package
# is reported as such.
apt_update() {
  local out="${WORK}/apt-update.log" line
  if ! apt-get update -q >"$out" 2>&1; then
    cat "$out" >&2
    check_apt_update_log "$out"
    die "apt-get update failed (see the log above)"
  fi
  check_apt_update_log "$out"
  # apt-get update exits 0 when index files fail to download: catch that too.
  line="$(grep -m1 -E '^(W|E): Failed to fetch' "$out" || true)"
  if [ -n "$line" ]; then
    cat "$out" >&2
    die "apt-get update could not fetch the package lists (check the proxy build args and mirrors): ${line#*: }"
  fi
}
check_apt_update_log() {
  local out="$1" line
  line="$(grep -E 'NO_PUBKEY|BADSIG|EXPKEYSIG|is not signed|GPG error|signatures were invalid|signatures couldn.t be verified' "$out" | head -n 1 || true)"
  if [ -n "$line" ]; then
    cat "$out" >&2
    die "bad signature: the DOCA repository ${repo_uri:-} is not signed by the configured key (${key_origin:-?}): ${line}"
  fi
}

# The distribution's package lists (and CA certificates for an https DOCA
# repository, fetched with apt's own transport).
apt_update
if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
  apt-get install "${APT_OPTS[@]}" ca-certificates >/dev/null || die "could not install ca-certificates"
fi

# ---------------------------------------------------------------- repository
mkdir -p "$CANVOS_DOCA_KEYRING_DIR"
key_origin=""
key_src=""
repo_uri=""

fetch() { # URL DEST -> uses apt's own transport (proxies, CA store)
  /usr/lib/apt/apt-helper download-file "$1" "$2" >"${WORK}/fetch.log" 2>&1
}

if [ -n "$DOCA_KEY_FILE" ]; then
  rel="${DOCA_KEY_FILE#"${DOCA_CONTEXT_DIR}/keys/"}"
  [ "$rel" != "$DOCA_KEY_FILE" ] ||
    die "DOCA key file '${DOCA_KEY_FILE}' must be under '${DOCA_CONTEXT_DIR}/keys/' of the build context"
  key_src="${KEYS_MOUNT}/${rel}"
  [ -f "$key_src" ] || die "DOCA key file '${DOCA_KEY_FILE}' is missing from the build context"
  key_origin="pinned key ${DOCA_KEY_FILE}"
fi

case "$DOCA_SOURCE" in
  online)
    repo_uri="${DOCA_REPO_URL}/${DOCA_VERSION}/${os_dir}/${arch_dir}/"
    if ! fetch "${repo_uri}InRelease" "${WORK}/InRelease" && ! fetch "${repo_uri}Release" "${WORK}/Release"; then
      if grep -qE '404|Not Found' "${WORK}/fetch.log"; then
        die "DOCA version ${DOCA_VERSION} not found: ${repo_uri} has no Release file (HTTP 404); check the version and OS (${os_dir}/${arch_dir})"
      fi
      die "DOCA repository unreachable: ${repo_uri} ($(grep -m1 -E 'E:|Err|Could not|Failed' "${WORK}/fetch.log" || echo 'no answer'))"
    fi
    if [ -z "$key_src" ]; then
      key_src="${WORK}/GPG-KEY-Mellanox.pub"
      fetch "${DOCA_REPO_URL}/GPG-KEY-Mellanox.pub" "$key_src" ||
        die "cannot download the DOCA signing key ${DOCA_REPO_URL}/GPG-KEY-Mellanox.pub"
      key_origin="${DOCA_REPO_URL}/GPG-KEY-Mellanox.pub"
    fi
    ;;
  repo-dir | repo-deb)
    repo_dir="$AIRGAP_MOUNT"
    if [ "$DOCA_SOURCE" = repo-deb ]; then
      mapfile -t debs < <(find "$AIRGAP_MOUNT" -maxdepth 1 -name 'doca-host_*.deb' | sort)
      [ "${#debs[@]}" -eq 1 ] || die "expected exactly one doca-host_*.deb in the air-gap directory, found ${#debs[@]}"
      case "$(basename "${debs[0]}")" in
        "doca-host_${DOCA_VERSION}-"*) ;;
        *) die "DOCA version ${DOCA_VERSION} not in the air-gapped source: $(basename "${debs[0]}") is another version" ;;
      esac
      # Unpacked into a temporary directory instead of dpkg -i: nothing is
      # registered in the image and the whole pool disappears with $WORK.
      dpkg-deb -x "${debs[0]}" "${WORK}/localrepo"
      repo_dir="$(find "${WORK}/localrepo" \( -name Packages -o -name Packages.gz -o -name Packages.xz \) -printf '%h\n' | sort | head -n 1)"
      [ -n "$repo_dir" ] || die "$(basename "${debs[0]}") holds no apt repository (no Packages index)"
    fi
    [ -e "${repo_dir}/InRelease" ] || [ -e "${repo_dir}/Release" ] ||
      die "the air-gapped DOCA repository has no Release/InRelease at its top"
    repo_uri="file:${repo_dir}/"
    if [ -z "$key_src" ]; then
      key_src="$(find "$repo_dir" -maxdepth 1 -name 'GPG-KEY-Mellanox*' | head -n 1)"
      [ -n "$key_src" ] || die "no DOCA signing key: supply one (doca.key_file) or ship GPG-KEY-Mellanox.pub in the repository"
      key_origin="GPG-KEY-Mellanox.pub of the air-gapped repository"
    fi
    ;;
esac

if grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' "$key_src"; then
  keyring="${CANVOS_DOCA_KEYRING_DIR}/canvos-doca.asc"
else
  keyring="${CANVOS_DOCA_KEYRING_DIR}/canvos-doca.gpg"
fi
install -m 0644 "$key_src" "$keyring"
printf 'deb [signed-by=%s] %s ./\n' "$keyring" "$repo_uri" >"${WORK}/doca.list"
log "DOCA source: ${repo_uri} (key: ${key_origin})"
# Preflight against the DOCA source alone (its own lists dir): a bad signature
# or a missing version fails here, before minutes of toolchain installs.
mkdir -p "${WORK}/lists/partial"
doca_only=(-o "Dir::Etc::SourceList=${WORK}/doca.list" -o "Dir::Etc::SourceParts=${WORK}/none"
  -o "Dir::State::Lists=${WORK}/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
if ! apt-get "${doca_only[@]}" update -q >"${WORK}/apt-doca.log" 2>&1; then
  check_apt_update_log "${WORK}/apt-doca.log"
  cat "${WORK}/apt-doca.log" >&2
  die "cannot read the DOCA repository ${repo_uri} (see the apt output above)"
fi
check_apt_update_log "${WORK}/apt-doca.log"

# The profile must come from the DOCA source, in the requested version.
# apt prints a flat source as "<uri without trailing slash> ./ Packages".
repo_match="${repo_uri%/} ./"
madison="$(apt-cache "${doca_only[@]}" madison "$DOCA_PROFILE" 2>/dev/null | grep -F "$repo_match" || true)"
[ -n "$madison" ] || die "DOCA version ${DOCA_VERSION} not in the repository: ${repo_uri} offers no ${DOCA_PROFILE}"
profile_version="$(printf '%s\n' "$madison" | awk -F'|' 'NR==1 {gsub(/ /, "", $2); print $2}')"
if [ "$DOCA_SOURCE" = repo-dir ]; then
  case "$profile_version" in
    "${DOCA_VERSION}" | "${DOCA_VERSION}"[-+.~]*) ;;
    *) grep -qsF "$DOCA_VERSION" "${repo_dir}/Release" "${repo_dir}/InRelease" ||
      die "DOCA version ${DOCA_VERSION} not in the air-gapped repository (it offers ${DOCA_PROFILE} ${profile_version})" ;;
  esac
fi

log "installing the build toolchain and linux-headers-${target_kernel}"
tools=(dkms gcc make kmod ca-certificates)
headers="linux-headers-${target_kernel}"
if ! apt-cache show "$headers" >/dev/null 2>&1; then
  die "no ${headers} in the image's package sources for kernel ${target_kernel}: use a base image whose kernel headers are still published, or pick a DOCA release that supports this kernel (check the DOCA/kernel pairing in the DOCA release notes)"
fi
apt-get install "${APT_OPTS[@]}" "${tools[@]}" "$headers" ||
  die "could not install the build toolchain (${tools[*]} ${headers})"
# Debian's/Ubuntu's dkms stays: held while DOCA installs so that DOCA's dkms
# cannot replace it, and pinned out below.
apt-mark hold dkms >/dev/null

# ---------------------------------------------------------------- DOCA source on
install -m 0644 "${WORK}/doca.list" "$CANVOS_DOCA_SOURCE_LIST"
# DOCA's repositories carry their own dkms; the distribution's must win
# (it is also held while DOCA installs).
cat >"$CANVOS_DOCA_PIN" <<PIN
Package: dkms
Pin: release l=DOCA-HOST*
Pin-Priority: -1
PIN
apt_update
apt-cache policy dkms | sed 's/^/[canvos-doca] /' >&2

# ---------------------------------------------------------------- no side effects
# 1) No service may start: policy-rc.d for invoke-rc.d/deb-systemd-invoke, and
#    a systemctl shim first in PATH that records and ignores every call
#    (enable/disable too: enablement is done below with unit links).
# 2) The NIC firmware updater must never run during the build: the updater
#    program is diverted to a stub for the duration of the install, and
#    on-boot updates are switched off in its configuration.
mkdir -p "$SHIM_DIR" /etc/mellanox
cat >"${SHIM_DIR}/systemctl" <<'SHIM'
#!/bin/sh
echo "[canvos-doca] build-time systemctl call ignored: systemctl $*" >&2
exit 0
SHIM
chmod 0755 "${SHIM_DIR}/systemctl"
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  created_policy=1
fi
fw_conf=/etc/mellanox/mlnx-fw-updater.conf
touch "$fw_conf"
sed -i '/^RUN_FW_UPDATER_ONBOOT=/d' "$fw_conf"
echo 'RUN_FW_UPDATER_ONBOOT=no' >>"$fw_conf"
dpkg-divert --quiet --local --rename --divert "${FW_UPDATER}.canvos-doca" --add "$FW_UPDATER"
mkdir -p "$(dirname "$FW_UPDATER")"
cat >"$FW_UPDATER" <<'STUB'
#!/bin/sh
echo "[canvos-doca] NIC firmware update blocked during the image build" >&2
exit 0
STUB
chmod 0755 "$FW_UPDATER"

cleanup_guards() {
  rm -f "$FW_UPDATER"
  dpkg-divert --quiet --local --rename --divert "${FW_UPDATER}.canvos-doca" --remove "$FW_UPDATER" || true
  rmdir -p --ignore-fail-on-non-empty "$(dirname "$FW_UPDATER")" 2>/dev/null || true
  if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

dpkg-query -W -f='${Package}\n' | sort -u >"${WORK}/pkgs.before"
log "installing ${DOCA_PROFILE} ${profile_version}"
# apt runs dpkg with its own PATH (DPkg::Path), so the shim goes there.
if ! PATH="${SHIM_DIR}:${PATH}" RUN_FW_UPDATER_ONBOOT=no apt-get install "${APT_OPTS[@]}" \
  -o "DPkg::Path=${SHIM_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$DOCA_PROFILE"; then
  cleanup_guards
  # A DKMS build that failed in a package script: name the module and kernel.
  for src in /var/lib/dkms/*/*/source; do
    [ -e "$src" ] || continue
    version="$(basename "$(dirname "$src")")"
    name="$(basename "$(dirname "$(dirname "$src")")")"
    for k in "${targets[@]}"; do
      if ! dkms status -m "$name" -v "$version" -k "$k" 2>/dev/null | grep -q ': installed'; then
        find "/var/lib/dkms/${name}/${version}" -name make.log -exec tail -n 40 {} \; 1>&2 2>/dev/null || true
        die "DKMS module ${name}/${version} failed to build for kernel ${k}: this DOCA release may not support this kernel (pin a DOCA/kernel pair that DOCA's release notes list)"
      fi
    done
  done
  die "installing ${DOCA_PROFILE} ${profile_version} failed (see the apt/dkms output above)"
fi
cleanup_guards

dpkg-query -W -f='${Package}\n' | sort -u >"${WORK}/pkgs.after"
comm -13 "${WORK}/pkgs.before" "${WORK}/pkgs.after" >"${WORK}/pkgs.new"

# DOCA packages = new packages whose installed version comes from the DOCA
# source (a distribution package of the same name does not count).
: >"${WORK}/doca.pkgs"
while read -r pkg; do
  v="$(dpkg-query -W -f='${Version}' "$pkg")"
  if apt-cache madison "$pkg" 2>/dev/null | awk -F'|' -v v="$v" '{gsub(/ /, "", $2)} $2 == v {print $3}' | grep -qF "$repo_match"; then
    echo "$pkg" >>"${WORK}/doca.pkgs"
  fi
done <"${WORK}/pkgs.new"
# The profile itself may already have been present (rebuilds on top).
grep -qxF "$DOCA_PROFILE" "${WORK}/doca.pkgs" || echo "$DOCA_PROFILE" >>"${WORK}/doca.pkgs"
sort -u -o "${WORK}/doca.pkgs" "${WORK}/doca.pkgs"

# ---------------------------------------------------------------- DKMS per kernel
: >"${WORK}/dkms"
while read -r pkg; do
  dpkg-query -L "$pkg" 2>/dev/null | grep -E '^/usr/src/[^/]+/dkms\.conf$' || true
done <"${WORK}/doca.pkgs" | sort -u | while read -r conf; do
  name="$(sed -n 's/^PACKAGE_NAME=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' "$conf" | head -n 1)"
  version="$(sed -n 's/^PACKAGE_VERSION=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' "$conf" | head -n 1)"
  [ -n "$name" ] && [ -n "$version" ] || die "cannot read PACKAGE_NAME/PACKAGE_VERSION from ${conf}"
  echo "$name $version" >>"${WORK}/dkms"
done

while read -r name version; do
  for k in "${targets[@]}"; do
    log "DKMS: ${name}/${version} for kernel ${k}"
    if ! dkms status -m "$name" -v "$version" -k "$k" 2>/dev/null | grep -q ': installed'; then
      if ! dkms install --force -m "$name" -v "$version" -k "$k"; then
        find "/var/lib/dkms/${name}/${version}" -name make.log -exec tail -n 40 {} \; 1>&2 2>/dev/null || true
        die "DKMS module ${name}/${version} failed to build for kernel ${k}: this DOCA release may not support this kernel (pin a DOCA/kernel pair that DOCA's release notes list)"
      fi
    fi
    dkms status -m "$name" -v "$version" -k "$k" 2>/dev/null | grep -q ': installed' ||
      die "DKMS module ${name}/${version} is not installed for kernel ${k} after the build"
  done
done <"${WORK}/dkms"

for k in "${targets[@]}"; do
  depmod -a "$k"
  if ! find "/lib/modules/${k}/updates/dkms" -name '*.ko*' 2>/dev/null | grep -q .; then
    if [ -s "${WORK}/dkms" ]; then
      die "no DOCA kernel module under /lib/modules/${k}/updates/dkms after the DKMS build"
    fi
  fi
done

# ---------------------------------------------------------------- services
# openibd loads the stack at boot: enable it with a vendor (/usr/lib) link,
# which an OS upgrade replaces cleanly (see the relocation step).
enable_unit() { # UNIT
  local unit="$1" unit_path="" wanted target
  for d in /usr/lib/systemd/system /lib/systemd/system /etc/systemd/system; do
    if [ -e "${d}/${unit}" ]; then unit_path="${d}/${unit}"; break; fi
  done
  [ -n "$unit_path" ] || return 1
  wanted="$(sed -n 's/^WantedBy=//p' "$unit_path" | tr ' ' '\n' | sed '/^$/d')"
  [ -n "$wanted" ] || wanted=multi-user.target
  for target in $wanted; do
    mkdir -p "/usr/lib/systemd/system/${target}.wants"
    ln -sfn "../${unit}" "/usr/lib/systemd/system/${target}.wants/${unit}"
  done
}

# ---------------------------------------------------------------- relocation
# Files DOCA packages put under Kairos persistent paths are seeded once into
# the persistent state and then go stale across OS upgrades. Move the ones
# with a safe immutable home (see README "Upgrade hazards").
mkdir -p "$CANVOS_DOCA_STATE" "$CANVOS_DOCA_RELOCATED"
: >"${CANVOS_DOCA_STATE}/relocated"
relocated() { printf '%s %s\n' "$1" "$2" >>"${CANVOS_DOCA_STATE}/relocated"; }
# Move a file or directory under /usr and leave one stable link in its place.
move_behind_link() {
  local dest="${CANVOS_DOCA_RELOCATED}$1"
  mkdir -p "$(dirname "$dest")"
  mv "$1" "$dest"
  ln -s "$dest" "$1"
  relocated "$1" "$dest"
}

xargs -r dpkg-query -L <"${WORK}/doca.pkgs" 2>/dev/null | sort -u >"${WORK}/doca.files"
# Units first (so the enablement link below points at the /usr/lib copy).
while read -r f; do
  case "$f" in
    /etc/systemd/system/*.service | /etc/systemd/system/*.socket | /etc/systemd/system/*.timer | /etc/systemd/system/*.path)
      if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(dirname "$f")" = /etc/systemd/system ]; then
        dest="/usr/lib/systemd/system/$(basename "$f")"
        mv "$f" "$dest"
        relocated "$f" "$dest"
      fi
      ;;
    /etc/modprobe.d/*)
      if [ -f "$f" ] && [ ! -L "$f" ]; then
        mkdir -p /usr/lib/modprobe.d
        dest="/usr/lib/modprobe.d/$(basename "$f")"
        mv "$f" "$dest"
        relocated "$f" "$dest"
      fi
      ;;
    /etc/init.d/*)
      if [ -f "$f" ] && [ ! -L "$f" ]; then
        move_behind_link "$f"
      fi
      ;;
  esac
done <"${WORK}/doca.files"
# Whole top-level directories under /opt (e.g. /opt/mellanox) move into /usr
# and stay reachable through one stable link.
grep -E '^/opt/[^/]+$' "${WORK}/doca.files" | while read -r d; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then
    move_behind_link "$d"
  fi
done

enabled_units=""
if enable_unit openibd.service; then
  enabled_units="openibd.service"
  # A stale /etc link from a package script would shadow nothing, but remove it
  # so the state in the persistent /etc/systemd stays empty.
  rm -f /etc/systemd/system/*.wants/openibd.service
else
  warn "openibd.service not found: the DOCA stack will not be loaded by openibd at boot"
fi

# ---------------------------------------------------------------- initramfs
for k in "${targets[@]}"; do
  if command -v dracut >/dev/null 2>&1; then
    log "dracut: /boot/initrd-${k}"
    dracut -f "/boot/initrd-${k}" "$k" >"${WORK}/dracut.log" 2>&1 || {
      tail -n 20 "${WORK}/dracut.log" >&2
      die "dracut failed for kernel ${k}"
    }
    ln -sfn "initrd-${k}" /boot/initrd
  elif command -v update-initramfs >/dev/null 2>&1; then
    update-initramfs -u -k "$k"
  else
    warn "no dracut or update-initramfs: initramfs not rebuilt (CanvOS rebuilds it later)"
  fi
done

# ---------------------------------------------------------------- clean up
ofed_version="$(command -v ofed_info >/dev/null 2>&1 && ofed_info -s 2>/dev/null | head -n 1 | sed 's/:$//' || true)"

# Headers are build-only: /lib/modules is read-only on Kairos so nothing can
# rebuild on the node, and the GPU Operator's driver container brings its own.
# The compiler stays: it is a hard dependency of dkms, which DOCA's *-dkms
# packages depend on (removing it would leave apt inconsistent for CanvOS).
removed_tools=()
if ! grep -qxF "$headers" "${WORK}/pkgs.initial"; then
  removed_tools+=("$headers")
fi
apt-mark unhold dkms >/dev/null
if [ "${#removed_tools[@]}" -gt 0 ]; then
  apt-get purge -y -q "${removed_tools[@]}" >/dev/null
  apt-get autoremove -y -q --purge >/dev/null
fi
# Keep DOCA where it is: hold every package that came from the DOCA source.
xargs -r apt-mark hold <"${WORK}/doca.pkgs" >/dev/null

rm -f "$CANVOS_DOCA_SOURCE_LIST" "$keyring" "$CANVOS_DOCA_PIN"
rmdir "$CANVOS_DOCA_KEYRING_DIR" 2>/dev/null || true
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# DKMS keeps whole build trees; the installed modules and the per-kernel
# copies under /var/lib/dkms/<m>/<v>/<kernel> are what matter.
while read -r name version; do
  rm -rf "/var/lib/dkms/${name}/${version}/build"
done <"${WORK}/dkms"
rm -rf /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /var/tmp/dracut.*

# ---------------------------------------------------------------- state for the manifest
# shellcheck disable=SC2046 # package names are single words
dpkg-query -W -f='${Package} ${Version}\n' $(cat "${WORK}/doca.pkgs") >"${CANVOS_DOCA_STATE}/packages"
cp "${WORK}/dkms" "${CANVOS_DOCA_STATE}/dkms"
{
  printf 'DOCA_VERSION=%s\n' "$DOCA_VERSION"
  printf 'DOCA_PROFILE=%s\n' "$DOCA_PROFILE"
  printf 'DOCA_PROFILE_VERSION=%s\n' "$profile_version"
  printf 'DOCA_SOURCE=%s\n' "$DOCA_SOURCE"
  printf 'DOCA_REPO=%s\n' "$repo_uri"
  printf 'DOCA_KEY=%s\n' "$key_origin"
  printf 'OS_DIR=%s\n' "$os_dir"
  printf 'ARCH_DIR=%s\n' "$arch_dir"
  printf 'OFED_VERSION=%s\n' "$ofed_version"
  printf 'KERNEL_POLICY=%s\n' newest
  printf 'KERNELS=%s\n' "${targets[*]}"
  printf 'IMAGE_KERNELS=%s\n' "${all_kernels[*]}"
  printf 'ENABLED_UNITS=%s\n' "$enabled_units"
  printf 'OFA_KERNEL=%s\n' "$([ -d /usr/src/ofa_kernel ] && echo yes || echo no)"
  printf 'BUILD_TOOLS_REMOVED=%s\n' "${removed_tools[*]}"
  printf 'BUILD_TOOLS_KEPT=%s\n' "dkms gcc make"
} >"${CANVOS_DOCA_STATE}/doca.env"
rm -rf "$WORK"
log "DOCA ${DOCA_VERSION} installed for kernel(s) ${targets[*]}"
