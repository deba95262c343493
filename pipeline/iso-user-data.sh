#!/usr/bin/env bash
# canvos-doca: write user-data that holds secrets onto a finished installer ISO.
#   canvos-doca-iso-user-data ISO PUBLIC_USER_DATA SECRET_USER_DATA ISO_PATH OUT_DIR
#
# CanvOS's +iso ran with PUBLIC_USER_DATA (every secret replaced by a
# placeholder), so Earthly's cache never held a secret. This copies ISO to
# OUT_DIR with the file at ISO_PATH replaced by SECRET_USER_DATA, keeping the
# boot equipment (El Torito, MBR/GPT, appended EFI partition: xorriso's
# "-boot_image any replay"), and writes OUT_DIR/<name>.sha256 like +iso does.
# Refuses unless the ISO's file at ISO_PATH is exactly PUBLIC_USER_DATA, so it
# never overwrites anything else. Never prints the secret; temporary copies
# go to TMPDIR (a tmpfs in the pipeline).
set -euo pipefail

die() {
  echo "canvos-doca: ERROR: $*" >&2
  exit 66
}

[ "$#" -eq 5 ] || die "usage: $0 ISO PUBLIC_USER_DATA SECRET_USER_DATA ISO_PATH OUT_DIR"
iso="$1" public="$2" secret="$3" iso_path="$4" out="$5"
name="$(basename "$iso")"
work="$(mktemp -d "${TMPDIR:-/tmp}/canvos-doca-iso.XXXXXX")"
trap 'rm -rf "$work"' EXIT

digest() { sha256sum <"$1" | cut -d' ' -f1; }

extract() { # ISO PATH_ON_ISO DEST
  xorriso -osirrox on -indev "$1" -extract "$2" "$3" >/dev/null 2>&1
}

if ! extract "$iso" "$iso_path" "$work/current"; then
  die "$name has no $iso_path: this CanvOS ref puts user-data elsewhere on the ISO"
fi
if [ "$(digest "$work/current")" != "$(digest "$public")" ]; then
  die "$iso_path on $name is not the user-data +iso was given; nothing was changed"
fi

mkdir -p "$out"
if ! xorriso -indev "$iso" -outdev "$out/$name" -boot_image any replay \
  -map "$secret" "$iso_path" -chmod 0644 "$iso_path" -- >"$work/log" 2>&1; then
  tail -n 20 "$work/log" >&2
  die "xorriso could not write $name"
fi
if ! extract "$out/$name" "$iso_path" "$work/written" ||
  [ "$(digest "$work/written")" != "$(digest "$secret")" ]; then
  die "the user-data read back from the new $name differs from what was written"
fi
(cd "$out" && sha256sum "$name" >"$name.sha256")
echo "canvos-doca: wrote user-data with its secrets to $iso_path on $name" >&2
