"""Rendering a CanvOS checkout: Dockerfile block, .arg, user-data, description."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline import canvos, cli, facts, inputs
from pipeline.errors import InvalidInput
from pipeline.spec import build_spec
from tests.unit.conftest import PE_VERSION, git_commit_all, render, sourced


def test_block_goes_below_the_marker_and_keeps_user_lines(
    canvos_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    dockerfile = (out / "Dockerfile").read_text()
    marker_at = dockerfile.index(facts.CANVOS_MARKER)
    begin_at = dockerfile.index(canvos.BLOCK_BEGIN)
    assert marker_at < begin_at < dockerfile.index(canvos.BLOCK_END)
    assert dockerfile.count(canvos.BLOCK_BEGIN) == 1
    # Nothing but a blank line between the marker and the block.
    between = dockerfile[marker_at + len(facts.CANVOS_MARKER) : begin_at]
    assert between.strip() == ""
    assert "RUN echo customized > /etc/user-customization" in dockerfile
    assert dockerfile.startswith("ARG BASE\nFROM $BASE\n")
    # The block carries the values Earthly will not pass to the Dockerfile.
    block = dockerfile[begin_at : dockerfile.index(canvos.BLOCK_END)]
    assert "3.2.2" in block and "doca-ofed" in block
    assert "@@" not in block


def test_rerender_is_identical(canvos_tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert render(canvos_tree, first) == 0
    assert render(first, second) == 0  # render over an already rendered tree
    for name in ("Dockerfile", ".arg", "user-data"):
        assert (first / name).read_text() == (second / name).read_text(), name
    described = [json.loads((d / "canvos-doca.json").read_text()) for d in (first, second)]
    for description in described:
        description["canvos"].pop("url")  # the local checkout's path differs
    assert described[0] == described[1]


def test_rerender_with_other_values_replaces_the_block(canvos_tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert render(canvos_tree, first, "--doca-version", "3.2.2") == 0
    assert render(first, second, "--doca-version", "2.9.3") == 0
    dockerfile = (second / "Dockerfile").read_text()
    assert dockerfile.count(canvos.BLOCK_BEGIN) == 1
    assert "2.9.3" in dockerfile and "3.2.2" not in dockerfile


def test_marker_missing_is_a_clear_error(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (canvos_tree / "Dockerfile").write_text("FROM scratch\n")
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 2
    err = capsys.readouterr().err
    assert "customization marker" in err and "CanvOS checkout" in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["CanvOS"]  # no staging leftovers


def test_arg_file_has_the_spec_values(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--k8s-version", "1.33.10", "--custom-tag", "doca",
                  "--image-registry", "ghcr.io/acme", "--os-version", "24.04") == 0  # fmt: skip
    values = sourced(out / ".arg")
    assert values["K8S_VERSION"] == "1.33.10"
    assert values["CUSTOM_TAG"] == "doca"
    assert values["IMAGE_REGISTRY"] == "ghcr.io/acme"
    assert values["OS_VERSION"] == "24.04"
    assert values["IMAGE_REPO"] == "ubuntu"
    assert values["IS_UKI"] == "false" and values["UPDATE_KERNEL"] == "false"
    # Empty mirror overrides would blank the Earthfile's defaults: never written.
    assert "SPECTRO_PUB_REPO" not in values and "BASE_IMAGE" not in values


def test_description_names_the_provider_image_like_the_earthfile(
    canvos_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--k8s-version", "1.33.10,1.34.6", "--custom-tag", "nv") == 0
    description = json.loads((out / "canvos-doca.json").read_text())
    # IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:$K8S_DISTRIBUTION-$K8S_VERSION-$PE_VERSION-$CUSTOM_TAG
    assert description["outputs"]["provider_images"] == [
        f"localhost:5000/ubuntu:k3s-1.33.10-{PE_VERSION}-nv",
        f"localhost:5000/ubuntu:k3s-1.34.6-{PE_VERSION}-nv",
    ]
    assert description["outputs"]["iso"] == "build/palette-edge-installer.iso"
    assert description["canvos"]["pe_version"] == PE_VERSION


def test_no_custom_tag_drops_the_suffix() -> None:
    spec = build_spec({}, {"custom_tag": ""})
    assert canvos.provider_image_refs(spec, "v4.9.38") == [
        "localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"
    ]


def test_k8s_version_not_known_to_the_checkout(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(canvos_tree, tmp_path / "out", "--k8s-version", "1.20.1") == 2
    assert "k8s_version.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--trusted-boot"], ["--k8s-version", ""], ["--update-kernel"]],
)
def test_refusals_exit_2_with_one_line_and_write_nothing(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    assert not out.exists()


def test_user_data_comments_are_preserved(canvos_tree: Path, tmp_path: Path) -> None:
    user_data = tmp_path / "my-user-data.yaml"
    user_data.write_text(
        "#cloud-config\n# my site comment\nstylus:\n  site:\n    paletteEndpoint: api.example.com"
        "  # endpoint comment\ninstall:\n  poweroff: true\n"
    )
    out = tmp_path / "out"
    assert (
        render(canvos_tree, out, "--user-data", str(user_data), "--bind-mounts", "/var/lib/nv") == 0
    )
    text = (out / "user-data").read_text()
    assert "# my site comment" in text and "# endpoint comment" in text
    data = yaml.safe_load(text)
    assert "/var/lib/nv" in data["install"]["bind_mounts"]
    assert data["stylus"]["site"]["paletteEndpoint"] == "api.example.com"


def test_default_user_data_installs_and_powers_off(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    text = (out / "user-data").read_text()
    assert text.startswith("#cloud-config")
    assert yaml.safe_load(text)["install"]["poweroff"] is True


def test_overlays_and_context_files_are_placed(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    assert (out / canvos.CONTEXT_DIR / canvos.FRAGMENT).is_file()
    assert (out / canvos.AIRGAP_DIR / ".keep").is_file()
    persistent = (out / canvos.PERSISTENT_PATHS_FILE).read_text().split()
    assert "/usr/local" in persistent and "/var/lib/kubelet" in persistent
    assert (out / "earthly.sh").read_text() == (canvos_tree / "earthly.sh").read_text()


def test_existing_out_needs_force(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    (out / "old").write_text("keep me")
    assert render(canvos_tree, out) == 2
    assert (out / "old").read_text() == "keep me"
    assert render(canvos_tree, out, "--force") == 0
    assert not (out / "old").exists() and (out / "Dockerfile").is_file()


def test_failed_render_keeps_the_previous_output(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    before = (out / "Dockerfile").read_text()
    assert render(canvos_tree, out, "--force", "--arch", "sparc") == 2
    assert (out / "Dockerfile").read_text() == before


def test_airgap_source_is_detected_and_copied(canvos_tree: Path, tmp_path: Path) -> None:
    repo = tmp_path / "mirror"
    repo.mkdir()
    (repo / "Packages").write_text("")
    (repo / "InRelease").write_text("")
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--doca-airgap", str(repo)) == 0
    assert (out / canvos.AIRGAP_DIR / "Packages").is_file()
    description = json.loads((out / "canvos-doca.json").read_text())
    assert description["doca"]["source"] == "repo-dir"
    assert "repo-dir" in (out / "Dockerfile").read_text()


def test_airgap_source_of_the_wrong_shape(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("")
    with pytest.raises(InvalidInput) as caught:
        inputs.from_paths(doca_airgap=junk)
    assert caught.value.problems[0].field == "doca_airgap"
    assert render(canvos_tree, tmp_path / "o", "--doca-airgap", str(junk)) == 2
    err = capsys.readouterr().err
    # named as typed: the flag and the path, not the directory's listing
    assert f"--doca-airgap='{junk}': is neither" in err and "readme.txt" not in err
    assert not (tmp_path / "o").exists()


def test_plan_without_a_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--doca-profile", "doca-networking", "--https-proxy",
                     "http://proxy:3128"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "doca-networking" in out and "doca_profile = doca-networking" in out
    assert "http://proxy:3128" in out
    assert "ubuntu22.04/x86_64" in out


def test_config_file_and_flags(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "build.yaml"
    config.write_text("doca_profile: doca-all\nk8s_version: [1.33.10]\ncustom_tag: fromfile\n")
    assert cli.main(["plan", "--canvos", str(canvos_tree), "--config", str(config),
                     "--custom-tag", "fromflag"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "doca-all" in out and "k3s-1.33.10-v4.9.38-fromflag" in out
    config.write_text("doca_profle: doca-all\n")
    assert cli.main(["plan", "--config", str(config)]) == 2
    assert "did you mean doca_profile?" in capsys.readouterr().err


def test_local_checkout_is_described_as_such(canvos_tree: Path, tmp_path: Path) -> None:
    head = git_commit_all(canvos_tree)
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    recorded = json.loads((out / "canvos-doca.json").read_text())
    described = recorded["canvos"]
    assert described["url"] == str(canvos_tree.resolve())
    assert described["ref"] == "(local checkout)" and described["commit"] == head
    # The default ref was not used: the record does not claim it.
    assert "canvos_ref" not in recorded["spec"] and "canvos_url" not in recorded["spec"]


def test_every_bind_path_is_created_in_the_image(canvos_tree: Path, tmp_path: Path) -> None:
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/mine\n")
    out = tmp_path / "out"
    args = ["--user-data", str(user_data), "--doca-profile", "doca-networking"]
    assert render(canvos_tree, out, *args, "--bind-mounts", "/var/lib/kubelet") == 0
    dockerfile = (out / "Dockerfile").read_text()
    block = dockerfile[dockerfile.index(canvos.BLOCK_BEGIN) : dockerfile.index(canvos.BLOCK_END)]
    for path in ("/etc/openvswitch", "/var/lib/openvswitch", "/var/lib/mine"):
        assert path in block
    assert "/var/lib/kubelet" not in block  # a Kairos default: already persistent
    persistent = (out / canvos.PERSISTENT_PATHS_FILE).read_text().split()
    assert "/var/lib/mine" in persistent and "/etc/openvswitch" in persistent
    description = json.loads((out / "canvos-doca.json").read_text())["persistence"]
    assert [m["path"] for m in description["left_out"]] == ["/var/lib/kubelet"]


def test_pinned_key_lands_where_the_stage_reads_it(canvos_tree: Path, tmp_path: Path) -> None:
    key = tmp_path / "doca.asc"
    key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--doca-repo-key", str(key)) == 0
    assert (out / canvos.KEY_PATH).read_text() == key.read_text()
    assert f"ARG DOCA_KEY_FILE={canvos.KEY_PATH}" in (out / "Dockerfile").read_text()
