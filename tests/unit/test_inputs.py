"""The file-input adapter: the CLI's paths and the Dagger module's objects end
in the same BuildInputs, and every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import facts, inputs
from pipeline.errors import InvalidInput
from pipeline.inputs import ONLINE, REPO_DEB, REPO_DIR, BuildInputs
from pipeline.spec import BuildSpec

USER_DATA = "#cloud-config\ninstall:\n  device: auto\n"
DEB = "doca-host_3.2.2-034000-25.10-ubuntu2204_amd64.deb"
PUBLIC_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBF\n-----END PGP PUBLIC KEY BLOCK-----\n"


def test_local_repo_name_is_the_fact_the_image_stage_also_reads() -> None:
    assert inputs.classify_airgap([DEB]) == REPO_DEB
    assert f"DOCA_LOCAL_REPO_GLOB={facts.DOCA_LOCAL_REPO_GLOB}\n" in facts.shell_env()
    with pytest.raises(InvalidInput):
        inputs.classify_airgap(["doca-host-3.2.2.deb"])  # not the package's name


@pytest.mark.parametrize("names", [["Packages"], ["Packages.xz", "x"], ["InRelease"]])
def test_a_flat_repository_is_recognised(names: list[str]) -> None:
    assert inputs.classify_airgap(names) == REPO_DIR


def test_paths_end_in_build_inputs(tmp_path: Path) -> None:
    user_data, key, repo = tmp_path / "ud", tmp_path / "key.asc", tmp_path / "repo"
    user_data.write_text(USER_DATA)
    key.write_text(PUBLIC_KEY)
    repo.mkdir()
    (repo / "Release").write_text("")
    found = inputs.from_paths(user_data, repo, key)
    assert found == BuildInputs(USER_DATA, inputs.Airgap(REPO_DIR, repo), key, str(user_data))
    assert found.doca_source == REPO_DIR
    deb = tmp_path / DEB
    deb.write_text("")
    assert inputs.from_paths(doca_airgap=deb).doca_source == REPO_DEB
    assert inputs.from_paths().doca_source == ONLINE


def test_every_path_problem_at_once_without_quoting_content(tmp_path: Path) -> None:
    user_data = tmp_path / "ud"
    user_data.write_bytes(b"#cloud-config\n\xff tok-SECRET\n")
    with pytest.raises(InvalidInput) as caught:
        inputs.from_paths(user_data, tmp_path / "missing", tmp_path)
    problems = caught.value.problems
    assert [p.field for p in problems] == ["user_data", "doca_airgap", "doca_repo_key"]
    assert "UTF-8" in problems[0].message
    assert "tok-SECRET" not in caught.value.render()


def test_an_airgap_and_a_repo_url_are_one_source_too_many() -> None:
    airgapped = BuildInputs(airgap=inputs.Airgap(REPO_DIR, Path("repo")))
    assert airgapped.problems(BuildSpec()) == []
    mirror = BuildSpec(doca_repo_url="https://mirror.example.com/doca")
    assert [p.field for p in airgapped.problems(mirror)] == ["doca_airgap"]
    assert inputs.NO_FILES.problems(mirror) == []
