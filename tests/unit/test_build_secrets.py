"""The DOCA stage's build secrets on the CLI: the module-signing key pair and a
DOCA mirror's apt auth.conf. Checked without showing content, the certificate
copied and fingerprinted, the key and the auth.conf never in the output, the
render summary telling how earthly.sh gets them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from pipeline import buildsecrets, canvos, output, persistence
from tests.unit.conftest import render_run, run

PASSWORD = "apt-Sentinel-77c1e0"
TOKEN = "tok-Sentinel-51aa09"
MIRROR = "https://mirror.corp:8443/doca"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A module-signing certificate and key made by openssl (PEM files)."""
    where = tmp_path_factory.mktemp("pair")
    key, cert = where / "mok.key", where / "mok.crt"
    subprocess.run(
        [
            *("openssl", "req", "-new", "-x509", "-nodes", "-days", "1", "-subj", "/CN=unit"),
            *("-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def key_body(key: Path) -> list[str]:
    return [line for line in key.read_text().splitlines() if not line.startswith("-----")]


def der_sha256(cert: Path) -> str:
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return hashlib.sha256(der).hexdigest()


def auth_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.conf"
    path.write_text(text)
    path.chmod(0o600)
    return path


def every_file_text(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()
    )


# ------------------------------------------------------------ key pair


def test_a_key_pair_renders_the_certificate_and_the_mount_never_the_key(
    canvos_tree: Path, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    cert, key = pair
    out = tmp_path / "out"
    code, stdout, err = render_run(
        canvos_tree, out, "--module-signing-cert", str(cert), "--module-signing-key", str(key)
    )
    assert code == 0, err
    assert (out / canvos.SIGNING_CERT_PATH).read_bytes() == cert.read_bytes()
    dockerfile = (out / "Dockerfile").read_text()
    assert dockerfile.count(canvos.MODULE_SIGNING_MOUNT) == 2  # DOCA install + extra packages
    assert buildsecrets.DOCA_REPO_AUTH.name not in dockerfile
    everything = every_file_text(out) + stdout + err
    assert not [line for line in key_body(key) if line in everything]
    described = json.loads((out / canvos.DESCRIPTION_FILE).read_text())
    assert described["module_signing"]["certificate_sha256"] == der_sha256(cert)
    # The plan shows the fingerprint; the summary how earthly.sh gets the key.
    assert der_sha256(cert) in stdout
    secret_dir = f"/workspace/{output.SECRETS_DIR}"
    flag = f"--secret-file {buildsecrets.MODULE_SIGNING.name}={secret_dir}/module-signing-key"
    earthly_lines = [line for line in stdout.splitlines() if "./earthly.sh" in line]
    assert earthly_lines and all(flag in line for line in earthly_lines)
    assert f"install -m 0600 {key} {output.SECRETS_DIR}/module-signing-key" in stdout
    assert f"rm -rf {output.SECRETS_DIR}" in stdout


def test_without_a_key_pair_the_block_mounts_no_secret(canvos_tree: Path, tmp_path: Path) -> None:
    code, stdout, err = render_run(canvos_tree, tmp_path / "out")
    assert code == 0, err
    dockerfile = (tmp_path / "out" / "Dockerfile").read_text()
    assert "type=secret" not in dockerfile
    assert not (tmp_path / "out" / canvos.SIGNING_CERT_PATH).exists()
    assert "--secret-file" not in stdout and "throwaway key" in stdout
    described = json.loads((tmp_path / "out" / canvos.DESCRIPTION_FILE).read_text())
    assert described["module_signing"] is None


@pytest.mark.parametrize(
    ("case", "field", "expected"),
    [
        ("cert only", "module_signing_cert", "without --module-signing-key"),
        ("key only", "module_signing_key", "without --module-signing-cert"),
        ("swapped", "module_signing_cert", "PRIVATE key, not the certificate"),
        ("user-data as key", "module_signing_key", "looks like a cloud-config"),
        ("auth.conf as key", "module_signing_key", "looks like an apt auth.conf"),
        ("key as cert, cert as key", "module_signing_key", "swapped"),
        ("directory as cert", "module_signing_cert", "is a directory"),
        ("encrypted key", "module_signing_key", "encrypted"),
    ],
)
def test_wrong_signing_files_name_the_argument_never_the_content(
    tmp_path: Path, pair: tuple[Path, Path], case: str, field: str, expected: str
) -> None:
    cert, key = pair
    user_data = tmp_path / "user-data"
    user_data.write_text(f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: {TOKEN}\n")
    auth = auth_file(tmp_path, f"machine linux.mellanox.com login u password {PASSWORD}\n")
    encrypted = tmp_path / "enc.key"
    encrypted.write_text(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    args = {
        "cert only": ["--module-signing-cert", cert],
        "key only": ["--module-signing-key", key],
        "swapped": ["--module-signing-cert", key, "--module-signing-key", key],
        "user-data as key": ["--module-signing-cert", cert, "--module-signing-key", user_data],
        "auth.conf as key": ["--module-signing-cert", cert, "--module-signing-key", auth],
        "key as cert, cert as key": ["--module-signing-cert", key, "--module-signing-key", cert],
        "directory as cert": ["--module-signing-cert", tmp_path, "--module-signing-key", key],
        "encrypted key": ["--module-signing-cert", cert, "--module-signing-key", encrypted],
    }[case]
    code, stdout, err = run("plan", *map(str, args))
    assert code == 2 and stdout == ""
    flag = "--" + field.replace("_", "-")  # named as the user typed it
    assert f"{flag}=" in err or f"invalid input: {flag}:" in err, err
    assert expected in err
    for secret in (PASSWORD, TOKEN, *key_body(key)):
        assert secret not in err


def test_certificate_checks_and_fingerprint(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    data = cert.read_bytes()
    assert buildsecrets.certificate_problems(data, "c") == []
    assert buildsecrets.fingerprint(data) == der_sha256(cert)
    (two,) = buildsecrets.certificate_problems(data + data, "c")
    assert two.message == "holds 2 certificates; pass exactly one."
    big = buildsecrets.certificate_problems(data + b"#" * buildsecrets.CERT_LIMIT, "c")
    assert "too large" in big[0].message
    assert buildsecrets.key_problems(key.read_bytes(), "k") == []
    with pytest.raises(ValueError):
        buildsecrets.fingerprint(key.read_bytes())


def der_of(path: Path, kind: str, tmp_path: Path) -> Path:
    """``path`` (PEM) converted to DER by openssl (``kind``: x509 or pkey)."""
    der = tmp_path / f"{path.name}.der"
    subprocess.run(
        ["openssl", kind, "-in", str(path), "-outform", "DER", "-out", str(der)],
        check=True,
        capture_output=True,
    )
    return der


def test_a_der_certificate_is_accepted_and_copied_as_given(
    canvos_tree: Path, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    """overlays/doca/README.md: the certificate may be PEM or DER (lib.sh reads both)."""
    cert, key = pair
    der = der_of(cert, "x509", tmp_path)
    assert buildsecrets.certificate_problems(der.read_bytes(), "c") == []
    assert buildsecrets.fingerprint(der.read_bytes()) == der_sha256(cert)
    out = tmp_path / "out"
    code, stdout, err = render_run(
        canvos_tree, out, "--module-signing-cert", str(der), "--module-signing-key", str(key)
    )
    assert code == 0, err
    assert (out / canvos.SIGNING_CERT_PATH).read_bytes() == der.read_bytes()
    assert der_sha256(cert) in stdout
    described = json.loads((out / canvos.DESCRIPTION_FILE).read_text())
    assert described["module_signing"]["certificate_sha256"] == der_sha256(cert)


def test_a_der_private_key_as_the_certificate_is_refused(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    """A key in the certificate's place would be copied into the build context."""
    der_key = der_of(pair[1], "pkey", tmp_path).read_bytes()
    (problem,) = buildsecrets.certificate_problems(der_key, "c")
    assert "private key" in problem.message and "swapped" in problem.message
    # a DER certificate cut short, or with bytes after it, is not one certificate
    der = der_of(pair[0], "x509", tmp_path).read_bytes()
    for bad in (der[:-1], der + b"\0"):
        (problem,) = buildsecrets.certificate_problems(bad, "c")
        assert "is not one certificate (PEM or DER)" in problem.message


def test_two_certificates_are_named_as_two(
    canvos_tree: Path, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    cert, key = pair
    chain = tmp_path / "chain.pem"
    chain.write_bytes(cert.read_bytes() * 2)
    code, _, err = render_run(
        canvos_tree, tmp_path / "out", "--module-signing-cert", str(chain),
        "--module-signing-key", str(key),
    )  # fmt: skip
    assert code == 2
    assert "holds 2 certificates; pass exactly one" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------ auth.conf


def test_a_mirror_login_is_mounted_for_the_install_step_only(
    canvos_tree: Path, tmp_path: Path
) -> None:
    auth = auth_file(
        tmp_path,
        "# mirror login\n"
        f"machine mirror.corp:8443/doca login builder password {PASSWORD}\n"
        "machine other.corp\n  login x\n  password y\n",
    )
    out = tmp_path / "out"
    code, stdout, err = render_run(
        canvos_tree, out, "--doca-repo-url", MIRROR, "--doca-repo-auth", str(auth)
    )
    assert code == 0, err
    dockerfile = (out / "Dockerfile").read_text()
    install, *rest = dockerfile.split("doca-install.sh", 1)
    assert buildsecrets.DOCA_REPO_AUTH.mount in install
    assert all(buildsecrets.DOCA_REPO_AUTH.mount not in part for part in rest)
    assert PASSWORD not in every_file_text(out) + stdout + err
    assert "builder" not in stdout + err
    described = json.loads((out / canvos.DESCRIPTION_FILE).read_text())
    assert described["doca"]["repo_auth"] == ["mirror.corp:8443/doca", "other.corp"]
    assert f"--secret-file {buildsecrets.DOCA_REPO_AUTH.name}=" in stdout
    assert "DOCA login" in stdout


@pytest.mark.parametrize(
    ("text", "url", "expected"),
    [
        (f"machine other.corp login u password {PASSWORD}\n", MIRROR, "host mirror.corp"),
        ("machine mirror.corp login u\n", MIRROR, "has no password"),
        (f"machine mirror.corp password {PASSWORD}\n", MIRROR, "has no login"),
        (f"login u password {PASSWORD}\n", MIRROR, "cannot be read"),
        ("# nothing\n", MIRROR, "has no 'machine"),
    ],
)
def test_a_wrong_auth_conf_names_the_machine_never_the_password(
    tmp_path: Path, text: str, url: str, expected: str
) -> None:
    auth = auth_file(tmp_path, text)
    code, _, err = run("plan", "--doca-repo-url", url, "--doca-repo-auth", str(auth))
    assert code == 2
    assert ("--doca-repo-auth=" in err or "--doca-repo-auth:" in err) and expected in err
    assert "'--doca-repo-auth'" not in err  # the flag is no value
    assert PASSWORD not in err


def test_a_credential_in_the_repo_url_points_to_doca_repo_auth() -> None:
    code, _, err = run("plan", "--doca-repo-url", f"https://u:{PASSWORD}@mirror.corp/doca")
    assert code == 2 and "--doca-repo-auth" in err and PASSWORD not in err


def test_auth_with_an_airgapped_source_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Packages").write_text("")
    auth = auth_file(tmp_path, f"machine linux.mellanox.com login u password {PASSWORD}\n")
    code, _, err = run("plan", "--doca-airgap", str(repo), "--doca-repo-auth", str(auth))
    assert code == 2 and "air-gapped" in err and PASSWORD not in err


# ---------------------------------------------------------- persistence


def test_plan_says_which_mechanism_keeps_the_paths_on_which_host() -> None:
    code, stdout, _ = run("plan", "--doca-profile", "doca-networking")
    assert code == 0
    lines = stdout.splitlines()
    start = lines.index("  Persistence (how the paths above reach Kairos)") + 1
    section = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        section.append(line)
    for case, mechanisms in persistence.COVERAGE:
        (line,) = [line for line in section if line.strip().startswith(f"{case}:")]
        named = line.split(":", 1)[1].strip().split(" + ")
        assert named == [m.name for m in mechanisms]
    upgrade = next(line for line in section if "upgrade" in line)
    assert persistence.USER_DATA_MOUNTS.name not in upgrade
    assert persistence.IMAGE_OEM_CONFIG in upgrade


def test_the_stage_reads_its_fixed_paths_from_facts_env() -> None:
    # One definition each (buildsecrets, persistence), handed to the scripts
    # in facts.env; tests/image/test_overlay_scripts.py fails on a literal copy.
    text = canvos.facts_env()
    env = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    fixed = {
        "MODULE_SIGNING_KEY_PATH": buildsecrets.MODULE_SIGNING.target,
        "DOCA_REPO_AUTH_PATH": buildsecrets.DOCA_REPO_AUTH.target,
        "IMAGE_OEM_CONFIG": persistence.IMAGE_OEM_CONFIG,
    }
    assert {key: env[key] for key in fixed} == fixed
    overlays = Path(canvos.__file__).parents[1] / "overlays" / "doca"
    scripts = "".join(
        p.read_text()
        for p in sorted(overlays.rglob("*"))
        if p.is_file() and p.suffix != ".md" and p.name != "Dockerfile.fragment"
    )
    for key in fixed:
        assert f"fact {key})" in scripts, key


@pytest.mark.parametrize(
    ("machine", "url", "ok"),
    [
        ("mirror.corp", "https://mirror.corp/doca", True),
        ("https://mirror.corp", "https://mirror.corp/doca", True),
        ("http://mirror.corp", "http://mirror.corp/doca", True),
        ("mirror.corp", "http://mirror.corp/doca", False),  # apt: http needs http://
        ("mirror.corp:8443", "https://mirror.corp:8443/doca", True),
    ],
)
def test_apt_sends_a_login_over_http_only_to_a_machine_with_its_protocol(
    machine: str, url: str, ok: bool
) -> None:
    entries = tuple(buildsecrets.auth_entries(f"machine {machine} login u password {PASSWORD}"))
    problems = buildsecrets.auth_host_problems(entries, "auth", url)
    assert (problems == []) is ok
    if not ok:
        assert "machine http://mirror.corp" in problems[0].fix and PASSWORD not in str(problems)


def test_the_persistence_docs_show_what_plan_prints() -> None:
    docs = (Path(canvos.__file__).parents[1] / "docs" / "persistence.md").read_text()
    shown = docs[docs.index("  Persistence (how") :].split("```", 1)[0].splitlines()
    code, stdout, _ = run("plan", "--doca-profile", "doca-networking")
    assert code == 0 and all(line in stdout.splitlines() for line in shown if line)


def test_the_summary_keeps_local_out_of_the_context_when_the_checkout_does_not(
    canvos_tree: Path, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    cert, key = pair
    args = ("--module-signing-cert", str(cert), "--module-signing-key", str(key))
    code, without, err = render_run(canvos_tree, tmp_path / "a", *args)
    assert code == 0, err
    assert "echo 'local/' >>.earthlyignore" in without
    (canvos_tree / ".earthlyignore").write_text("local/\nbuild/*\n")
    code, listed, err = render_run(canvos_tree, tmp_path / "b", *args)
    assert code == 0, err
    assert ".earthlyignore" not in listed
