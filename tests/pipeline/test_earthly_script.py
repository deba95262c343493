"""The script that runs inside the Earthly container, executed for real with
stand-ins for the two programs it drives (``docker`` and Earthly's entrypoint)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import earthly
from pipeline.earthfile import PRO_BUILD_ARG, PRO_SECRET

SCRIPT = Path(earthly.__file__).parent / "earthly-run.sh"

FAKE_DOCKER = r"""#!/bin/sh
echo "$*" >>"$FAKE_LOG/docker"
case "$1" in
  info) exit "${FAKE_DOCKER_INFO:-0}" ;;
  image)
    case "$2" in
      inspect)
        case " $FAKE_IMAGES " in
          *" $3 "*) echo '[{"Id": "sha256:abc", "Size": 7}]' ;;
          *) exit 1 ;;
        esac ;;
      rm|prune) exit 0 ;;
    esac ;;
  run)
    # run --rm --network none --entrypoint PROGRAM REF [ARGS]
    case "$6" in
      cat) printf '%s' "${FAKE_DOCA_MANIFEST:-}"; [ -n "${FAKE_DOCA_MANIFEST:-}" ] ;;
      *) echo "${FAKE_VERIFY_OUTPUT:-ok    verify of $7}"; exit "${FAKE_VERIFY_EXIT:-0}" ;;
    esac ;;
  save) printf 'tarball of %s\n' "$4" >"$3" ;;
esac
"""
FAKE_EARTHLY = r"""#!/bin/sh
printf '%s\n' "$@" >"$FAKE_LOG/earthly-argv"
printf '%s' "${EARTHLY_BUILD_ARGS:-}" >"$FAKE_LOG/earthly-build-args"
printf '%s' "${EARTHLY_SECRET_FILES:-}" >"$FAKE_LOG/earthly-secret-files"
env >"$FAKE_LOG/earthly-env"
exit "${FAKE_EARTHLY_EXIT:-0}"
"""


@dataclass
class Sandbox:
    root: Path

    @property
    def ws(self) -> Path:
        return self.root / "ws"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def docker_config(self) -> Path:
        return self.root / "docker"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {
            "PATH": f"{self.root / 'bin'}:{os.environ['PATH']}",
            "CANVOS_DOCA_WORKSPACE": str(self.ws),
            "CANVOS_DOCA_SECRETS": str(self.secrets),
            "CANVOS_DOCA_ENTRYPOINT": str(self.root / "bin" / "earthly-entrypoint.sh"),
            "CANVOS_DOCA_CA_DIR": str(self.root / "ca"),
            "DOCKER_CONFIG": str(self.docker_config),
            "DOCKER_HOST": earthly.DOCKER_HOST,
            "FAKE_LOG": str(self.log),
        }
        return subprocess.run(
            ["sh", str(SCRIPT), *args],
            env={**base, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def earthly_argv(self) -> list[str]:
        return (self.log / "earthly-argv").read_text().splitlines()


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    for name in ("ws", "secrets", "log", "docker", "ca", "bin"):
        (tmp_path / name).mkdir()
    for name, text in (
        ("docker", FAKE_DOCKER),
        ("earthly-entrypoint.sh", FAKE_EARTHLY),
        ("update-ca-certificates", "#!/bin/sh\nexit 0\n"),
    ):
        path = tmp_path / "bin" / name
        path.write_text(text)
        path.chmod(0o755)
    return sandbox


def test_runs_earthly_privileged_with_the_target_and_args(box: Sandbox) -> None:
    result = box.run("+iso", "--K8S_VERSION=1.34.6", CANVOS_DOCA_TARGET="+iso")
    assert result.returncode == 0, result.stderr
    assert box.earthly_argv() == ["--allow-privileged", "+iso", "--K8S_VERSION=1.34.6"]
    assert not (box.ws / "build").exists()


REF = "localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"
VERIFY = "/usr/bin/canvos-doca-verify"
MANIFEST = "/usr/share/canvos-doca/manifest.json"


def docker_calls(box: Sandbox) -> list[str]:
    return (box.log / "docker").read_text().splitlines()


def test_a_provider_image_is_verified_in_docker_saved_and_removed(box: Sandbox) -> None:
    result = box.run(
        "+build-provider-images",
        "--K8S_VERSION=1.34.6",
        CANVOS_DOCA_SAVE=f"{REF}|ubuntu-k3s|tar",
        CANVOS_DOCA_VERIFY=VERIFY,
        CANVOS_DOCA_MANIFEST=MANIFEST,
        FAKE_IMAGES=REF,
        FAKE_DOCA_MANIFEST='{"doca_version": "3.2.2"}',
    )
    assert result.returncode == 0, result.stderr
    images = box.ws / "build" / "images"
    assert (images / "ubuntu-k3s.tar").read_text() == f"tarball of {REF}\n"
    assert json.loads((images / "ubuntu-k3s.json").read_text())[0]["Id"] == "sha256:abc"
    assert (images / "ubuntu-k3s.verify").read_text() == f"ok    verify of {REF}\n"
    assert (images / "ubuntu-k3s.verify-exit").read_text() == "0\n"
    assert json.loads((images / "ubuntu-k3s.doca.json").read_text()) == {"doca_version": "3.2.2"}
    check = subprocess.run(
        ["sha256sum", "-c", "ubuntu-k3s.tar.sha256"], cwd=images, capture_output=True, check=False
    )
    assert check.returncode == 0
    # Disk: leftovers pruned first; the image leaves docker once it is saved.
    calls = docker_calls(box)
    assert calls[1] == "image prune --all --force"
    assert calls[-6:] == [
        f"image inspect {REF}",
        f"run --rm --network none --entrypoint {VERIFY} {REF}",
        f"run --rm --network none --entrypoint cat {REF} {MANIFEST}",
        f"save -o {images}/ubuntu-k3s.tar {REF}",
        f"image rm {REF}",
        "image prune --force",
    ]


def test_an_image_only_checked_is_never_written_out(box: Sandbox) -> None:
    ref = "palette-installer-image:v4.9.38"
    result = box.run("+iso-image", CANVOS_DOCA_SAVE=f"{ref}|installer|check", FAKE_IMAGES=ref)
    assert result.returncode == 0, result.stderr
    images = box.ws / "build" / "images"
    assert sorted(p.name for p in images.iterdir()) == [
        "installer.doca.json",
        "installer.json",
        "installer.verify",
        "installer.verify-exit",
    ]
    # No manifest in the image: an empty file (verify reports the miss).
    assert (images / "installer.doca.json").read_text() == ""
    calls = docker_calls(box)
    assert not any(call.startswith("save") for call in calls)
    assert f"image rm {ref}" in calls


def test_a_foreign_architecture_is_explained(box: Sandbox) -> None:
    output = "exec /usr/bin/canvos-doca-verify: exec format error"
    result = box.run(
        "+iso-image",
        CANVOS_DOCA_SAVE=f"{REF}|img|check",
        FAKE_IMAGES=REF,
        FAKE_VERIFY_EXIT="1",
        FAKE_VERIFY_OUTPUT=output,
    )
    assert result.returncode == 0, result.stderr
    report = (box.ws / "build" / "images" / "img.verify").read_text()
    assert report.startswith(output) and "QEMU binfmt" in report


def test_a_failing_verify_is_recorded_and_nothing_is_saved(box: Sandbox) -> None:
    result = box.run(
        "+build-provider-images",
        CANVOS_DOCA_SAVE=f"{REF}|ubuntu-k3s|tar",
        FAKE_IMAGES=REF,
        FAKE_VERIFY_EXIT="1",
    )
    # The exec succeeds; the runner reads the verdict and stops the build.
    assert result.returncode == 0, result.stderr
    images = box.ws / "build" / "images"
    assert (images / "ubuntu-k3s.verify-exit").read_text() == "1\n"
    assert not (images / "ubuntu-k3s.tar").exists()
    assert f"image rm {REF}" in docker_calls(box)


def test_an_image_earthly_did_not_load_is_an_error(box: Sandbox) -> None:
    result = box.run(
        "+iso-image", CANVOS_DOCA_SAVE="missing:1|m|check", CANVOS_DOCA_TARGET="+iso-image"
    )
    assert result.returncode == 65
    assert "Earthly target +iso-image did not load missing:1 into docker" in result.stderr


def test_earthly_failure_keeps_its_exit_code_and_names_the_target(box: Sandbox) -> None:
    result = box.run("+iso", CANVOS_DOCA_TARGET="+iso", FAKE_EARTHLY_EXIT="3")
    assert result.returncode == 3
    assert "Earthly target +iso failed with exit code 3" in result.stderr


def test_a_missing_docker_daemon_points_at_privileges(box: Sandbox) -> None:
    result = box.run("+iso", FAKE_DOCKER_INFO="1", CANVOS_DOCA_DOCKER_WAIT="1")
    assert result.returncode == 70
    assert "privileged execution" in result.stderr
    assert not (box.log / "earthly-argv").exists()


def test_registry_password_becomes_a_docker_config_and_is_never_printed(box: Sandbox) -> None:
    (box.secrets / "registry-password").write_text("pa55-w0rd")
    result = box.run(
        "+iso",
        CANVOS_DOCA_REGISTRY_USER="ci",
        CANVOS_DOCA_REGISTRY_HOSTS="mirror.corp registry.corp:5000",
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((box.docker_config / "config.json").read_text())
    auth = base64.b64encode(b"ci:pa55-w0rd").decode()
    assert config == {
        "auths": {"mirror.corp": {"auth": auth}, "registry.corp:5000": {"auth": auth}}
    }
    assert "pa55-w0rd" not in result.stdout + result.stderr
    assert "pa55-w0rd" not in "".join(box.earthly_argv())


# Every program the script runs besides docker and Earthly, wrapped to log its argv.
PROGRAMS = ("base64", "tr", "cat", "cp", "mkdir", "sha256sum", "sed", "df", "sleep")


@pytest.mark.parametrize("pro", [PRO_BUILD_ARG, PRO_SECRET])
def test_no_secret_reaches_any_argv_or_the_log(box: Sandbox, pro: str) -> None:
    for program in PROGRAMS:
        real = shutil.which(program)
        assert real, program
        shim = box.root / "bin" / program
        shim.write_text(f'#!/bin/sh\necho "{program} $*" >>"$FAKE_LOG/argv"\nexec {real} "$@"\n')
        shim.chmod(0o755)
    (box.secrets / "registry-password").write_text("pa55-Sentinel\n")
    (box.secrets / "ubuntu-pro-key").write_text("pro-Sentinel")
    result = box.run(
        "+build-provider-images",
        CANVOS_DOCA_REGISTRY_USER="ci",
        CANVOS_DOCA_REGISTRY_HOSTS="registry.corp",
        CANVOS_DOCA_UBUNTU_PRO=pro,
        CANVOS_DOCA_SAVE=f"{REF}|ubuntu-k3s|tar",
        FAKE_IMAGES=REF,
    )
    assert result.returncode == 0, result.stderr
    argv = (box.log / "argv").read_text()
    assert "tr -d" in argv and "base64" in argv  # the password went through them
    seen = argv + (box.log / "docker").read_text() + "".join(box.earthly_argv())
    seen += result.stdout + result.stderr
    for secret in ("pa55-Sentinel", "pro-Sentinel"):
        assert secret not in seen
    auth = json.loads((box.docker_config / "config.json").read_text())["auths"]
    assert auth == {"registry.corp": {"auth": base64.b64encode(b"ci:pa55-Sentinel").decode()}}


def test_a_docker_config_secret_is_used_as_is(box: Sandbox) -> None:
    (box.secrets / "docker-config.json").write_text('{"auths": {"x": {"auth": "eA=="}}}')
    (box.secrets / "registry-password").write_text("ignored")
    assert box.run("+iso").returncode == 0
    assert json.loads((box.docker_config / "config.json").read_text()) == {
        "auths": {"x": {"auth": "eA=="}}
    }


def test_ubuntu_pro_key_is_an_earthly_secret_file_where_the_earthfile_takes_one(
    box: Sandbox,
) -> None:
    key = box.secrets / "ubuntu-pro-key"
    key.write_text("C0ffee-pro")
    result = box.run("+iso", CANVOS_DOCA_UBUNTU_PRO=PRO_SECRET)
    assert result.returncode == 0, result.stderr
    # Earthly reads the secret from the file: the value is in no argv and no env.
    assert (box.log / "earthly-secret-files").read_text() == f"UBUNTU_PRO_KEY={key}"
    assert (box.log / "earthly-build-args").read_text() == ""
    assert "C0ffee-pro" not in (box.log / "earthly-env").read_text()
    assert "C0ffee-pro" not in "".join(box.earthly_argv())
    assert "C0ffee-pro" not in result.stdout + result.stderr


def test_ubuntu_pro_key_is_a_build_arg_from_env_where_the_earthfile_takes_only_that(
    box: Sandbox,
) -> None:
    (box.secrets / "ubuntu-pro-key").write_text("C0ffee-pro\n")
    result = box.run("+iso", CANVOS_DOCA_UBUNTU_PRO=PRO_BUILD_ARG)
    assert result.returncode == 0, result.stderr
    assert (box.log / "earthly-build-args").read_text() == "UBUNTU_PRO_KEY=C0ffee-pro"
    assert (box.log / "earthly-secret-files").read_text() == ""
    assert "C0ffee-pro" not in "".join(box.earthly_argv())
    assert "C0ffee-pro" not in result.stdout + result.stderr


@pytest.mark.parametrize("contract", ["", PRO_SECRET])
def test_without_a_key_file_nothing_is_passed_or_the_run_stops(box: Sandbox, contract: str) -> None:
    result = box.run("+iso", CANVOS_DOCA_UBUNTU_PRO=contract)
    if contract:
        assert result.returncode == 64
        assert "Ubuntu Pro key file" in result.stderr
        assert not (box.log / "earthly-argv").exists()
    else:
        assert result.returncode == 0, result.stderr
        assert (box.log / "earthly-secret-files").read_text() == ""
        assert (box.log / "earthly-build-args").read_text() == ""


def test_checkout_certs_are_trusted(box: Sandbox) -> None:
    (box.ws / "certs").mkdir()
    (box.ws / "certs" / "proxy-ca.crt").write_text("CERT")
    (box.ws / "certs" / ".keep").write_text("")
    assert box.run("+iso").returncode == 0
    assert sorted(p.name for p in (box.root / "ca").iterdir()) == ["proxy-ca.crt"]


def test_script_defaults_match_the_chain_layout() -> None:
    script = earthly.RUN_SCRIPT
    assert f'ws="${{CANVOS_DOCA_WORKSPACE:-{earthly.WORKSPACE}}}"' in script
    assert f'secrets="${{CANVOS_DOCA_SECRETS:-{earthly.SECRET_DIR}}}"' in script
    assert f"{earthly.OUTPUT_DIR}/images" == earthly.IMAGES_DIR
    assert 'images="$ws/build/images"' in script
    for path in (earthly.REGISTRY_PASSWORD, earthly.DOCKER_CONFIG, earthly.UBUNTU_PRO_KEY):
        assert f'"$secrets/{Path(path).name}"' in script
    for contract in (PRO_SECRET, PRO_BUILD_ARG):
        assert f"\n  {contract})\n" in script


def test_build_secrets_join_the_pro_key_as_earthly_secret_files(box: Sandbox) -> None:
    (box.secrets / "ubuntu-pro-key").write_text("C0ffee-pro")
    signing = box.secrets / "module-signing-key"
    signing.write_text("-----BEGIN PRIVATE KEY-----\nS1gning-value\n-----END PRIVATE KEY-----\n")
    auth = box.secrets / "doca-repo-auth"
    auth.write_text("machine mirror.corp login u password Auth-value\n")
    listed = f"CANVOS_DOCA_MODULE_SIGNING_KEY={signing},CANVOS_DOCA_REPO_AUTH={auth}"
    result = box.run("+iso", CANVOS_DOCA_UBUNTU_PRO=PRO_SECRET, CANVOS_DOCA_SECRET_FILES=listed)
    assert result.returncode == 0, result.stderr
    files = (box.log / "earthly-secret-files").read_text().split(",")
    assert files == [f"UBUNTU_PRO_KEY={box.secrets / 'ubuntu-pro-key'}", *listed.split(",")]
    seen = (box.log / "earthly-env").read_text() + "".join(box.earthly_argv())
    for value in ("S1gning-value", "Auth-value"):
        assert value not in seen and value not in result.stdout + result.stderr


def test_a_missing_build_secret_file_stops_the_run_naming_it(box: Sandbox) -> None:
    missing = box.secrets / "module-signing-key"
    result = box.run("+iso", CANVOS_DOCA_SECRET_FILES=f"CANVOS_DOCA_MODULE_SIGNING_KEY={missing}")
    assert result.returncode == 64
    assert "CANVOS_DOCA_MODULE_SIGNING_KEY" in result.stderr
    assert not (box.log / "earthly-argv").exists()
