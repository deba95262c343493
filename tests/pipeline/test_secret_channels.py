"""Every secret, through the module's real resolve step, into every chain of a build.

Channels a secret could take on the Dagger path, and what these tests hold:

* a plain query value (exec argv, env, a file written with ``withNewFile``,
  build args, names): never; ``plain_values`` walks every argument of every
  chain (Secret objects not entered, so a ``setSecret``'s plaintext is the
  only place the value may be);
* an Earthly exec (its inputs are cache keys, its state is the persistent
  Earthly volume): only registry credentials and the Ubuntu Pro key, as
  mounted secret files; user-data secrets never;
* a proxy, DOCA repository or CanvOS URL with credentials: refused before
  any chain is built, the message naming the field, never the password;
* the DOCA stage's build secrets (module-signing key, DOCA mirror auth.conf):
  mounted secret files in the Earthly execs, named to Earthly by
  ``NAME=PATH`` only; in ``doca-image`` Dockerfile secrets under the id the
  block's mount asks for; never plain anywhere.

The engine's answers for the few awaits come from host files
(``host_engine.HostEngine``); no stub sits between the module and the chains.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import dagger
import pytest
import yaml
from chains import env, named, own, plain_values, steps
from dagger import dag
from host_engine import HostEngine

from pipeline import buildsecrets, canvos, credentials, earthly, runner, textfile, workspace
from pipeline.errors import InvalidInput
from pipeline.main import CanvosDoca
from tests.earthfiles import MAIN
from tests.unit.conftest import make_canvos_tree
from tests.unit.test_airgap import doca_host_deb

ROOT = Path(__file__).parents[2]
TOKEN = "tok-Sentinel-7f3a0c"
PASSWORD = "pw-Sentinel-91c2e4"
PRO_KEY = "pro-Sentinel-55d1aa"
DOCKER_AUTH = "auth-Sentinel-0b9e77"
SENTINELS = (TOKEN, PASSWORD, PRO_KEY, DOCKER_AUTH)
SIGNING_CERT = canvos.SIGNING_CERT_PATH
USER_DATA = "#cloud-config\nstylus:\n  site:\n    name: edge-1\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_canvos_tree(tmp_path / "CanvOS")


def host_dir(path: Path) -> dagger.Directory:
    return dag.host().directory(str(path))


def host_file(path: Path) -> dagger.File:
    return dag.host().file(str(path))


def module(tree: Path, **kwargs: Any) -> CanvosDoca:
    return CanvosDoca(overlays=host_dir(ROOT / "overlays"), canvos=host_dir(tree), **kwargs)


def user_data_file(tmp_path: Path, text: str = USER_DATA) -> dagger.File:
    path = tmp_path / "user-data"
    path.write_text(text)
    return host_file(path)


def every_chain(run: runner.Run) -> dict[str, Any]:
    """Every lazy object a build of ``run`` sends to the engine."""
    build = run.build
    chains: dict[str, Any] = {
        "context": build.context,
        "+iso": build.iso(),
        "ISO output": build.iso_output(),
        "+iso-image": build.installer_image().built,
        "doca-image": build.doca_image(),
    }
    for version in run.spec.k8s_version:
        chains[f"provider {version}"] = build.provider_image(version).built
    return chains


def assert_never_plain(run: runner.Run) -> None:
    for name, chain in every_chain(run).items():
        values = " ".join(plain_values(chain))
        for sentinel in SENTINELS:
            assert sentinel not in values, f"{sentinel} in {name}"


def earthly_execs(run: runner.Run) -> dict[str, dagger.Container]:
    build = run.build
    execs = {"+iso": build.iso(), "+iso-image": build.installer_image().built}
    execs.update({v: build.provider_image(v).built for v in run.spec.k8s_version})
    return execs


def set_secret_of(secret: dagger.Secret) -> dict[str, Any]:
    ((name, args),) = steps(secret)
    assert name == "setSecret"
    return args


async def resolved_run(canvos: CanvosDoca) -> runner.Run:
    with HostEngine().running():
        return await canvos._run()


# ------------------------------------------------------------ user-data


@pytest.mark.parametrize(
    "where",
    ["edge-host-token flag", "token in the user-data file", "registry password in user-data"],
)
async def test_user_data_secrets_reach_only_the_last_exec(
    tree: Path, tmp_path: Path, where: str
) -> None:
    kwargs: dict[str, Any] = {}
    text = USER_DATA
    if where == "edge-host-token flag":
        kwargs["edge_host_token"] = dag.set_secret("edge-host-token", TOKEN)
    elif where == "token in the user-data file":
        text += f"    edgeHostToken: {TOKEN}\n"
    else:
        text += f"  registryCredentials:\n    username: bob\n    password: {TOKEN}\n"
    run = await resolved_run(module(tree, user_data=user_data_file(tmp_path, text), **kwargs))

    # What every cached step sees: the placeholder, never the value.
    public = run.prepared.files["user-data"]
    assert TOKEN not in public and credentials.PLACEHOLDER in public
    assert_never_plain(run)
    for name, ctr in earthly_execs(run).items():
        paths = [m["path"] for m in named(ctr, "withMountedSecret")]
        assert earthly.USER_DATA not in paths, name

    # The real user-data: a Dagger secret, written onto the ISO by the last exec only.
    secret = run.build.credentials.user_data
    assert secret is not None
    args = set_secret_of(secret)
    assert TOKEN in args["plaintext"] and TOKEN not in args["name"]
    full = yaml.safe_load(args["plaintext"])
    assert yaml.safe_load(public) == yaml.safe_load(
        args["plaintext"].replace(TOKEN, credentials.PLACEHOLDER)
    )
    assert full["stylus"]["site"]["name"] == "edge-1"
    (mount,) = named(run.build.iso_output(), "withMountedSecret")
    assert mount == {"path": earthly.USER_DATA, "source": secret}


async def test_a_new_token_is_a_new_cache_key(tree: Path, tmp_path: Path) -> None:
    # setSecret's cache identity is its name (dagger v0.21): the name follows the content.
    found = []
    for token in ("tok-one", "tok-two", "tok-one"):
        canvos = module(
            tree,
            user_data=user_data_file(tmp_path),
            edge_host_token=dag.set_secret("edge-host-token", token),
        )
        run = await resolved_run(canvos)
        assert run.build.credentials.user_data is not None
        found.append(set_secret_of(run.build.credentials.user_data)["name"])
    assert found[0] == found[2] != found[1]
    assert not any("tok-" in name for name in found)


async def test_user_data_without_secrets_takes_no_extra_step(tree: Path, tmp_path: Path) -> None:
    run = await resolved_run(module(tree, user_data=user_data_file(tmp_path)))
    assert run.build.credentials.user_data is None
    assert "user-data" in run.prepared.files
    assert run.prepared.files["user-data"].startswith(USER_DATA)
    iso = run.build.iso_output()
    assert not named(iso, "withMountedSecret") and steps(iso)[-1][0] == "directory"


async def test_prepare_writes_user_data_secrets_through_an_exec(tree: Path, tmp_path: Path) -> None:
    canvos = module(
        tree,
        user_data=user_data_file(tmp_path),
        edge_host_token=dag.set_secret("edge-host-token", TOKEN),
    )
    with HostEngine().running():
        prepared = await canvos.prepare()
    assert TOKEN not in " ".join(plain_values(prepared))
    (installed,) = named(prepared, "withExec")
    assert installed["args"][:3] == ["install", "-m", "0600"]
    assert installed["args"][-1] == "/out/user-data"
    (mount,) = named(prepared, "withMountedSecret")
    assert TOKEN in set_secret_of(mount["source"])["plaintext"]


# ------------------------------------------------- registry, docker, Pro


@pytest.mark.parametrize("earthfile", ["v4.9", "main"])
async def test_build_secrets_are_mounted_files_in_the_earthly_execs_only(
    tree: Path, tmp_path: Path, earthfile: str
) -> None:
    if earthfile == "main":
        (tree / "Earthfile").write_text(MAIN)
    secrets = {
        "registry_password": dag.set_secret("registry", PASSWORD),
        "docker_config": dag.set_secret(
            "docker", json.dumps({"auths": {"r": {"auth": DOCKER_AUTH}}})
        ),
        "ubuntu_pro_key": dag.set_secret("pro", PRO_KEY),
    }
    run = await resolved_run(module(tree, registry_username="ci", **secrets))
    assert_never_plain(run)
    where = {
        "registry_password": earthly.REGISTRY_PASSWORD,
        "docker_config": earthly.DOCKER_CONFIG,
        "ubuntu_pro_key": earthly.UBUNTU_PRO_KEY,
    }
    for name, ctr in earthly_execs(run).items():
        mounted = {m["path"]: m["source"] for m in own(ctr, "withMountedSecret")}
        assert mounted == {where[k]: secrets[k] for k in where}, name
        assert not own(ctr, "withSecretVariable"), name
    # The DOCA-only build (a Dockerfile build) gets none of them.
    assert not named(run.build.doca_image(), "withMountedSecret")
    assert run.secrets_given == ("docker_config", "registry_password", "ubuntu_pro_key")


# ---------------------------------------------------------------- URLs

CREDENTIAL_URLS = {
    "http_proxy": f"http://builder:{PASSWORD}@proxy.corp:3128",
    "https_proxy": f"http://{PASSWORD}@proxy.corp:3128",
    "doca_repo_url": f"https://u:{PASSWORD}@mirror.corp/doca",
    "canvos_url": f"https://x-access-token:{PASSWORD}@github.com/corp/CanvOS.git",
}


@pytest.mark.parametrize("field", sorted(CREDENTIAL_URLS))
@pytest.mark.parametrize("given", ["flag", "config file"])
async def test_urls_with_credentials_are_refused_before_any_chain(
    tree: Path, tmp_path: Path, field: str, given: str
) -> None:
    url = CREDENTIAL_URLS[field]
    if given == "flag":
        canvos = module(tree, **{field: url})
    else:
        config = tmp_path / "build.yaml"
        config.write_text(yaml.safe_dump({field: url}))
        canvos = module(tree, config=host_file(config))
    with HostEngine().running(), pytest.raises(InvalidInput) as caught:
        await canvos.plan()
    (problem,) = caught.value.problems
    assert problem.field == field
    assert PASSWORD not in str(caught.value) and "builder" not in str(caught.value)
    assert "***@" in str(problem.value)
    assert problem.fix


async def test_a_proxy_without_credentials_stays_plain(tree: Path) -> None:
    proxy = "http://proxy.corp:3128"
    run = await resolved_run(module(tree, http_proxy=proxy, no_proxy="corp"))
    for name, ctr in earthly_execs(run).items():
        assert env(ctr)["HTTP_PROXY"] == env(ctr)["http_proxy"] == proxy, name
    (docker_build,) = named(run.build.doca_image(), "dockerBuild")
    assert {"name": "HTTP_PROXY", "value": proxy} in docker_build["buildArgs"]
    assert not docker_build.get("secrets")


def test_proxy_env_refuses_credentials_even_if_asked() -> None:
    from pipeline.spec import BuildSpec

    with pytest.raises(ValueError, match="credentials"):
        earthly.proxy_env(BuildSpec(http_proxy=CREDENTIAL_URLS["http_proxy"]))


# ------------------------------------------------------- file inputs


@pytest.mark.parametrize("field", ["user_data", "config"])
async def test_oversized_files_are_refused_before_they_are_read(
    tree: Path, tmp_path: Path, field: str
) -> None:
    limit = textfile.USER_DATA_LIMIT if field == "user_data" else textfile.CONFIG_LIMIT
    big = tmp_path / "big.yaml"
    big.write_text("#cloud-config\n" + "# pad\n" * (limit // 6 + 1))
    assert big.stat().st_size > limit
    canvos = module(tree, **{field: host_file(big)})
    engine = HostEngine()
    with engine.running(), pytest.raises(InvalidInput) as caught:
        await canvos.plan()
    (problem,) = caught.value.problems
    assert problem.field == field
    assert f"larger than {textfile.size_text(limit)}" in problem.message
    assert big not in engine.read


async def test_a_binary_user_data_is_refused_without_quoting_it(tree: Path, tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(b"#cloud-config\n" + TOKEN.encode() + b"\0\x01\x02")
    with HostEngine().running(), pytest.raises(InvalidInput) as caught:
        await module(tree, user_data=host_file(path)).plan()
    assert "binary" in str(caught.value) and TOKEN not in str(caught.value)


async def test_an_oversized_canvos_file_is_refused(tree: Path) -> None:
    (tree / "Earthfile").write_text("#" * (textfile.CHECKOUT_FILE_LIMIT + 1))
    engine = HostEngine()
    with engine.running(), pytest.raises(InvalidInput) as caught:
        await module(tree).plan()
    assert caught.value.problems[0].field == "canvos"
    assert tree / "Earthfile" not in engine.read


# ------------------------------------------------------------- air gap


@pytest.mark.parametrize("version", ["3.2.2-034000-25.10-ubuntu2204", "3.1.0-1"])
async def test_an_airgapped_deb_has_its_version_checked_from_its_head(
    tree: Path, tmp_path: Path, version: str
) -> None:
    airgap_dir = tmp_path / "airgap"
    airgap_dir.mkdir()
    deb = doca_host_deb(airgap_dir, version, compression="zstd")
    # Make the package bigger than what leaves the engine.
    with deb.open("ab") as handle:
        handle.write(b"\0" * (workspace.DEB_HEAD_BYTES * 2))
    canvos = module(tree, doca_airgap=host_dir(airgap_dir), doca_version="3.2.2")
    engine = HostEngine()
    with engine.running():
        if version.startswith("3.2.2"):
            await canvos._checked()
        else:
            with pytest.raises(InvalidInput) as caught:
                await canvos._checked()
            (problem,) = caught.value.problems
            assert problem.field == "doca_airgap"
            assert problem.value == f"--doca-airgap/{deb.name}"
            assert "DOCA-Host 3.1.0" in problem.message and "/tmp" not in problem.message
    assert list(engine.exported.values()) == [workspace.DEB_HEAD_BYTES]


async def test_plan_reads_no_deb(tree: Path, tmp_path: Path) -> None:
    airgap_dir = tmp_path / "airgap"
    airgap_dir.mkdir()
    doca_host_deb(airgap_dir, "3.1.0-1")
    engine = HostEngine()
    with engine.running():
        text = await module(tree, doca_airgap=host_dir(airgap_dir)).plan()
    assert engine.exported == {} and "--doca-airgap" in text


# ----------------------------------------------------------------- disk


async def test_plan_states_the_disk_the_build_needs(tree: Path, tmp_path: Path) -> None:
    with HostEngine().running():
        one = await module(tree).plan()
        two = await module(
            tree,
            k8s_version=["1.33.10", "1.34.6"],
            edge_host_token=dag.set_secret("edge-host-token", TOKEN),
        ).plan()
    assert TOKEN not in two
    totals = []
    for text in (one, two):
        section = text[text.index("Disk on the engine host") :]
        totals.append(int(section.split("total", 1)[1].split()[0]))
        assert "facts.toml [disk]" in section
    # Two provider tarballs, more Earthly state, and the ISO written twice.
    assert totals[1] > totals[0]
    assert "the copy with the user-data secrets" in two and "user-data secrets" not in one


# ------------------------------------------------ DOCA stage build secrets

AUTH_PASSWORD = "apt-Sentinel-3d9f21"


@pytest.fixture(scope="module")
def signing_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A module-signing certificate file and its private key's PEM text (openssl)."""
    where = tmp_path_factory.mktemp("signing")
    key, cert = where / "mok.key", where / "mok.crt"
    subprocess.run(
        [
            *("openssl", "req", "-new", "-x509", "-nodes", "-days", "1", "-subj", "/CN=channels"),
            *("-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key.read_text()


def key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM key: none may show up anywhere plain."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def stage_secrets(signing_pair: tuple[Path, str]) -> dict[str, Any]:
    cert, key = signing_pair
    return {
        "module_signing_cert": host_file(cert),
        "module_signing_key": dag.set_secret("mok", key),
        "doca_repo_auth": dag.set_secret(
            "auth", f"machine linux.mellanox.com login builder password {AUTH_PASSWORD}\n"
        ),
    }


async def test_stage_secrets_are_earthly_secret_files_and_never_plain(
    tree: Path, signing_pair: tuple[Path, str]
) -> None:
    given = stage_secrets(signing_pair)
    run = await resolved_run(module(tree, **given))
    forbidden = [AUTH_PASSWORD, "builder", *key_body(signing_pair[1])]
    for name, chain in every_chain(run).items():
        values = " ".join(plain_values(chain))
        assert not [s for s in forbidden if s in values], name
    where = {
        buildsecrets.MODULE_SIGNING.dagger_path: given["module_signing_key"],
        buildsecrets.DOCA_REPO_AUTH.dagger_path: given["doca_repo_auth"],
    }
    flags = {s.flag for s in buildsecrets.SECRETS}
    for name, ctr in earthly_execs(run).items():
        mounted = {m["path"]: m["source"] for m in own(ctr, "withMountedSecret")}
        assert mounted == where, name
        assert set(env(ctr)["CANVOS_DOCA_SECRET_FILES"].split(",")) == flags, name
        assert not own(ctr, "withSecretVariable"), name
    # The rendered Dockerfile mounts both; the context has the certificate, not the key.
    dockerfile = run.prepared.files["Dockerfile"]
    for secret in buildsecrets.SECRETS:
        assert secret.mount in dockerfile
    (cert,) = [a for a in named(run.build.context, "withFile") if a["path"] == SIGNING_CERT]
    assert cert["source"] is given["module_signing_cert"]
    assert run.secrets_given == ("doca_repo_auth", "module_signing_key")
    # Recorded: the certificate's fingerprint and the auth.conf's machine, no secret.
    described = json.loads(run.prepared.files[canvos.DESCRIPTION_FILE])
    der = subprocess.run(
        ["openssl", "x509", "-in", str(signing_pair[0]), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert described["module_signing"]["certificate_sha256"] == hashlib.sha256(der).hexdigest()
    assert described["doca"]["repo_auth"] == ["linux.mellanox.com"]


async def test_doca_image_gets_the_stage_secrets_under_their_mount_ids(
    tree: Path, signing_pair: tuple[Path, str]
) -> None:
    canvos_doca = module(tree, base_image="kairos:test", **stage_secrets(signing_pair))
    with HostEngine().running():
        image = await canvos_doca.doca_image()
    (build,) = named(image, "dockerBuild")
    names = sorted(set_secret_of(s)["name"] for s in build["secrets"])
    assert names == sorted(s.id for s in buildsecrets.SECRETS)
    assert AUTH_PASSWORD not in " ".join(plain_values(image))


async def test_without_stage_secrets_no_mount_and_no_secret_files(tree: Path) -> None:
    run = await resolved_run(module(tree))
    for secret in buildsecrets.SECRETS:
        assert secret.name not in run.prepared.files["Dockerfile"]
    for name, ctr in earthly_execs(run).items():
        assert "CANVOS_DOCA_SECRET_FILES" not in env(ctr), name
    (build,) = named(run.build.doca_image(), "dockerBuild")
    assert not build.get("secrets")


def der_certificate(cert: Path, tmp_path: Path) -> Path:
    """``cert`` (PEM) as DER, which the API cannot hand over as text."""
    der = tmp_path / "mok.der"
    subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER", "-out", str(der)],
        check=True,
        capture_output=True,
    )
    return der


@pytest.mark.parametrize(
    ("given", "field", "expected"),
    [
        ("cert only", "module_signing_cert", "without --module-signing-key"),
        ("key only", "module_signing_key", "without --module-signing-cert"),
        ("swapped", "module_signing_cert", "PRIVATE key"),
        ("DER certificate", "module_signing_cert", "convert it to PEM"),
        ("user-data as key", "module_signing_key", "cloud-config"),
        ("auth for another host", "doca_repo_auth", "linux.mellanox.com"),
        ("auth without password", "doca_repo_auth", "has no password"),
    ],
)
async def test_wrong_stage_secrets_are_refused_without_their_content(
    tree: Path,
    tmp_path: Path,
    signing_pair: tuple[Path, str],
    given: str,
    field: str,
    expected: str,
) -> None:
    cert, key = signing_pair
    key_path = tmp_path / "mok.key"
    key_path.write_text(key)
    kwargs: dict[str, Any] = {
        "cert only": {"module_signing_cert": host_file(cert)},
        "key only": {"module_signing_key": dag.set_secret("k", key)},
        "swapped": {
            "module_signing_cert": host_file(key_path),
            "module_signing_key": dag.set_secret("k", cert.read_text()),
        },
        "DER certificate": {
            "module_signing_cert": host_file(der_certificate(cert, tmp_path)),
            "module_signing_key": dag.set_secret("k", key),
        },
        "user-data as key": {
            "module_signing_cert": host_file(cert),
            "module_signing_key": dag.set_secret("k", USER_DATA + f"  token: {TOKEN}\n"),
        },
        "auth for another host": {
            "doca_repo_auth": dag.set_secret(
                "a", f"machine other.corp login u password {AUTH_PASSWORD}\n"
            )
        },
        "auth without password": {
            "doca_repo_auth": dag.set_secret("a", "machine linux.mellanox.com login u\n")
        },
    }[given]
    with HostEngine().running(), pytest.raises(InvalidInput) as caught:
        await module(tree, **kwargs).plan()
    text = str(caught.value)
    assert field in {p.field for p in caught.value.problems}
    assert expected in text
    for secret in (AUTH_PASSWORD, TOKEN, *key_body(key)):
        assert secret not in text
