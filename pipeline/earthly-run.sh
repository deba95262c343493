#!/bin/sh
# canvos-doca: run one Earthly target the way CanvOS's earthly.sh does.
#   canvos-doca-earthly [EARTHLY FLAGS] TARGET [--BUILD_ARG=value ...]
# Paths default to the Earthly container's layout (overridable for tests).
#
# CANVOS_DOCA_SAVE lists the images the target loads into docker, one
# "REF|NAME|MODE" line each. For each one, in the docker daemon that already
# holds it unpacked (no extra copy): its facts (NAME.json), the DOCA verify
# report and exit code (NAME.verify, NAME.verify-exit), the DOCA manifest
# (NAME.doca.json); with MODE "tar" and a passing verify also an OCI tarball
# (NAME.tar, NAME.tar.sha256).
# Then the image is removed from docker: the daemon is empty between runs.
set -eu
ws="${CANVOS_DOCA_WORKSPACE:-/workspace}"
secrets="${CANVOS_DOCA_SECRETS:-/run/canvos-doca}"
entrypoint="${CANVOS_DOCA_ENTRYPOINT:-/usr/bin/earthly-entrypoint.sh}"
ca_dir="${CANVOS_DOCA_CA_DIR:-/usr/local/share/ca-certificates}"
docker_config="${DOCKER_CONFIG:-/root/.docker}"
wait_seconds="${CANVOS_DOCA_DOCKER_WAIT:-120}"
images="$ws/build/images"
target="${CANVOS_DOCA_TARGET:-earthly}"
verify="${CANVOS_DOCA_VERIFY:-/usr/bin/canvos-doca-verify}"
doca_manifest="${CANVOS_DOCA_MANIFEST:-/usr/share/canvos-doca/manifest.json}"

# certs/ of the checkout: trusted by the embedded BuildKit (earthly.sh mounts
# them into the Earthly container and runs update-ca-certificates).
if [ -d "$ws/certs" ]; then
  for cert in "$ws"/certs/*; do
    if [ -f "$cert" ]; then cp "$cert" "$ca_dir/"; fi
  done
  if ! update-ca-certificates >/dev/null 2>&1; then
    echo "canvos-doca: warning: update-ca-certificates failed" >&2
  fi
fi

# Registry credentials for Earthly's pulls, on a tmpfs (never in a layer).
if [ -f "$secrets/docker-config.json" ]; then
  cp "$secrets/docker-config.json" "$docker_config/config.json"
elif [ -f "$secrets/registry-password" ]; then
  # The password goes from the file through a pipe, never into an argv.
  auth="$({
    printf '%s:' "${CANVOS_DOCA_REGISTRY_USER:-}"
    tr -d '\r\n' <"$secrets/registry-password"
  } | base64 | tr -d '\n')"
  {
    printf '{"auths":{'
    sep=''
    for host in ${CANVOS_DOCA_REGISTRY_HOSTS:-}; do
      printf '%s"%s":{"auth":"%s"}' "$sep" "$host" "$auth"
      sep=','
    done
    printf '}}\n'
  } >"$docker_config/config.json"
fi

# The dind service needs a moment (and root capabilities) to come up.
tries=0
until docker info >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge "$wait_seconds" ]; then
    echo "canvos-doca: ERROR: no docker daemon answered at ${DOCKER_HOST:-} after" \
      "$wait_seconds s; the docker:dind service needs privileged execution" \
      "(insecure root capabilities)" >&2
    exit 70
  fi
  sleep 1
done
# Images a failed run left behind (this daemon and its volume are ours alone).
docker image prune --all --force >/dev/null

# The Ubuntu Pro key, a secret file, reaches Earthly the way the Earthfile
# takes it (CANVOS_DOCA_UBUNTU_PRO, read from the Earthfile by canvos-doca):
#   secret     RUN --secret UBUNTU_PRO_KEY (CanvOS main): an Earthly secret
#              read from the file (--secret-file); the value is in no argv or env.
#   build-arg  ARG UBUNTU_PRO_KEY (CanvOS v4.9.x): the only way is a build arg;
#              it goes through Earthly's environment, never argv or .arg.
pro="${CANVOS_DOCA_UBUNTU_PRO:-}"
pro_key="$secrets/ubuntu-pro-key"
if [ -n "$pro" ] && [ ! -s "$pro_key" ]; then
  echo "canvos-doca: ERROR: the Ubuntu Pro key file $pro_key is missing or empty" >&2
  exit 64
fi
secret_files=''
case "$pro" in
  '') ;;
  secret)
    secret_files="UBUNTU_PRO_KEY=$pro_key"
    ;;
  build-arg)
    EARTHLY_BUILD_ARGS="UBUNTU_PRO_KEY=$(cat "$pro_key")"
    export EARTHLY_BUILD_ARGS
    ;;
  *)
    echo "canvos-doca: ERROR: unknown Ubuntu Pro contract '$pro'" >&2
    exit 64
    ;;
esac

# Build secrets of the DOCA stage (CANVOS_DOCA_SECRET_FILES: "NAME=PATH,...",
# names and paths only): each a mounted secret file, handed to Earthly as
# --secret-file through its environment, so a value is in no argv or env.
old_ifs="$IFS"
IFS=','
for entry in ${CANVOS_DOCA_SECRET_FILES:-}; do
  file="${entry#*=}"
  if [ ! -s "$file" ]; then
    echo "canvos-doca: ERROR: the build secret file for ${entry%%=*} ($file) is missing or empty" >&2
    exit 64
  fi
  secret_files="${secret_files:+$secret_files,}$entry"
done
IFS="$old_ifs"
if [ -n "$secret_files" ]; then
  # Earthly splits EARTHLY_SECRET_FILES at commas (urfave/cli string slice).
  EARTHLY_SECRET_FILES="$secret_files"
  export EARTHLY_SECRET_FILES
fi

echo "canvos-doca: earthly $*" >&2
status=0
"$entrypoint" --allow-privileged "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "canvos-doca: ERROR: Earthly target $target failed with exit code $status" >&2
  df -h /tmp/earthly "$ws" 2>/dev/null | sed 's/^/canvos-doca: disk: /' >&2 || true
  exit "$status"
fi

# Images Earthly loaded into docker (SAVE IMAGE): facts, verify, tarball, removal.
if [ -n "${CANVOS_DOCA_SAVE:-}" ]; then
  mkdir -p "$images"
  while IFS='|' read -r ref name mode; do
    if [ -z "$ref" ]; then continue; fi
    if ! docker image inspect "$ref" >"$images/$name.json"; then
      echo "canvos-doca: ERROR: Earthly target $target did not load $ref into docker" >&2
      exit 65
    fi
    code=0
    docker run --rm --network none --entrypoint "$verify" "$ref" \
      >"$images/$name.verify" 2>&1 </dev/null || code=$?
    if [ "$code" -ne 0 ] && grep -qi 'exec format error' "$images/$name.verify"; then
      echo "canvos-doca: this docker daemon cannot run the image's architecture: register" \
        "QEMU binfmt handlers on the engine host, as cross-arch Earthly builds need" \
        >>"$images/$name.verify"
    fi
    echo "$code" >"$images/$name.verify-exit"
    docker run --rm --network none --entrypoint cat "$ref" "$doca_manifest" \
      >"$images/$name.doca.json" 2>/dev/null </dev/null || : >"$images/$name.doca.json"
    # A failed verify ends the build: no point writing gigabytes for it.
    if [ "$mode" = tar ] && [ "$code" -eq 0 ]; then
      docker save -o "$images/$name.tar" "$ref" </dev/null
      (cd "$images" && sha256sum "$name.tar" >"$name.tar.sha256")
    fi
    docker image rm "$ref" >/dev/null
  done <<SAVE
$CANVOS_DOCA_SAVE
SAVE
  # Layers the removed tags left untagged.
  docker image prune --force >/dev/null
fi
