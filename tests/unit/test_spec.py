"""BuildSpec loading and validation, table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import canvos, doca, inputs
from pipeline.config import parse_config
from pipeline.errors import InvalidInput
from pipeline.spec import (
    BOOL_FIELDS,
    CHOICES,
    FIELD_NAMES,
    LIST_FIELDS,
    REFUSED,
    RULES,
    BuildSpec,
    as_dict,
    build_spec,
    default,
)

REQUIRED_NAMES = [
    "canvos_url", "canvos_ref", "os_distribution", "os_version", "arch", "k8s_distribution",
    "k8s_version", "image_registry", "image_repo", "custom_tag", "iso_name", "doca_version",
    "doca_profile", "doca_repo_url", "extra_packages", "kernel_args", "bind_mounts",
    "user_data", "trusted_boot", "update_kernel",
]  # fmt: skip


def problems_of(**overrides: object) -> list[tuple[str, object]]:
    with pytest.raises(InvalidInput) as caught:
        build_spec({}, overrides)
    return [(p.field, p.value) for p in caught.value.problems]


def test_defaults_are_valid_and_pinned() -> None:
    spec = build_spec()
    assert spec == BuildSpec()
    assert spec.k8s_version and all(v.count(".") == 2 for v in spec.k8s_version)
    assert doca.series(spec.doca_version) in doca.LTS_SERIES
    assert spec.canvos_ref.startswith("v")


@pytest.mark.parametrize("name", REQUIRED_NAMES)
def test_issue_names_exist(name: str) -> None:
    # user_data is a file input (pipeline.inputs), the rest are knobs.
    assert name in (*FIELD_NAMES, *inputs.FILE_INPUT_NAMES)


def test_file_inputs_are_not_knobs() -> None:
    assert not set(inputs.FILE_INPUT_NAMES) & set(FIELD_NAMES)


def test_validation_tables_name_real_fields() -> None:
    assert set(RULES) | set(CHOICES) <= set(FIELD_NAMES) - set(BOOL_FIELDS)
    assert set(REFUSED) <= set(BOOL_FIELDS)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trusted_boot": True}, "trusted_boot"),
        ({"update_kernel": True}, "update_kernel"),
        ({"k8s_version": ""}, "k8s_version"),
        ({"k8s_version": []}, "k8s_version"),
        ({"k8s_version": "v1.34.6"}, "k8s_version"),
        ({"k8s_version": "1.34"}, "k8s_version"),
        ({"k8s_version": "1.34.6,1.34.6"}, "k8s_version"),
        ({"os_distribution": "opensuse-leap"}, "os_distribution"),
        ({"os_version": "20.04"}, "os_version"),
        ({"arch": "riscv64"}, "arch"),
        ({"k8s_distribution": "k0s"}, "k8s_distribution"),
        ({"doca_profile": "doca-everything"}, "doca_profile"),
        ({"doca_version": "latest-3.2-LTS"}, "doca_version"),
        ({"doca_version": "9.9.0"}, "doca_version"),
        ({"doca_repo_url": "ftp://mirror/doca"}, "doca_repo_url"),
        ({"bind_mounts": "relative/path"}, "bind_mounts"),
        ({"bind_mounts": "/opt/../etc"}, "bind_mounts"),
        ({"bind_mounts": "/"}, "bind_mounts"),
        ({"bind_mounts": "/usr/local/data"}, "bind_mounts"),
        ({"bind_mounts": ["/var/lib/my data"]}, "bind_mounts"),
        ({"extra_packages": "Not_A_Package"}, "extra_packages"),
        ({"doca_packages": "Not_A_Package"}, "doca_packages"),
        ({"doca_packages": ["mlnx-nfsrdma-dkms=25.10"]}, "doca_packages"),
        ({"doca_packages": ["mlnx-nfsrdma-dkms; rm -rf /"]}, "doca_packages"),
        ({"kernel_args": ['iommu="pt"']}, "kernel_args"),
        ({"custom_tag": "bad tag"}, "custom_tag"),
        ({"iso_name": "dir/name"}, "iso_name"),
        ({"image_registry": "https://ghcr.io/acme"}, "image_registry"),
        ({"image_repo": "Ubuntu"}, "image_repo"),
        ({"http_proxy": "proxy:3128"}, "http_proxy"),
        ({"nvidia_driver_type": "closed"}, "nvidia_driver_type"),
        ({"install_nvidia_gpu_drivers": True, "arch": "arm64"}, "install_nvidia_gpu_drivers"),
    ],
)
def test_refusals_name_the_field(overrides: dict[str, object], field: str) -> None:
    fields = [f for f, _ in problems_of(**overrides)]
    assert field in fields


def test_refusal_reasons_are_one_sentence_with_a_fix() -> None:
    with pytest.raises(InvalidInput) as caught:
        build_spec({}, {"trusted_boot": True})
    (problem,) = caught.value.problems
    assert "UKI" in problem.message and "RAM" in problem.message
    assert "GRUB" in problem.fix
    with pytest.raises(InvalidInput) as caught:
        build_spec({}, {"k8s_version": ""})
    assert "every Kubernetes version" in caught.value.problems[0].message


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(
        trusted_boot=True, update_kernel=True, arch="sparc", k8s_version="", doca_profile="x"
    )
    assert {f for f, _ in found} == {
        "trusted_boot", "update_kernel", "arch", "k8s_version", "doca_profile",
    }  # fmt: skip


def test_rendered_error_lists_field_value_allowed_and_fix() -> None:
    with pytest.raises(InvalidInput) as caught:
        build_spec({}, {"arch": "sparc", "os_version": "18.04"})
    text = caught.value.render()
    assert "2 problems" in text
    assert "arch='sparc'" in text and "amd64, arm64" in text and "Fix:" in text
    assert "os_version='18.04'" in text and "22.04, 24.04" in text


def test_text_lists_split_at_their_separator_and_list_items_never() -> None:
    spec = build_spec({}, {"k8s_version": "1.34.6, 1.33.10", "kernel_args": "a=1,b c"})
    assert spec.k8s_version == ("1.34.6", "1.33.10")
    assert spec.kernel_args == ("a=1,b", "c")  # kernel arguments: spaces, never commas
    spec = build_spec({}, {"k8s_version": ["1.34.6", "1.32.9"], "kernel_args": ["x=1,2"]})
    assert spec.k8s_version == ("1.34.6", "1.32.9")
    assert spec.kernel_args == ("x=1,2",)


def test_explicit_arguments_override_the_config_file() -> None:
    config = parse_config("doca_profile: doca-networking\nos_version: 24.04\n")
    spec = build_spec(config, {"doca_profile": "doca-all", "os_version": None})
    assert spec.doca_profile == "doca-all"  # explicit wins
    assert spec.os_version == "24.04"  # None means "not given": the file's value stays


def test_a_file_input_in_the_config_file_points_at_its_flag() -> None:
    with pytest.raises(InvalidInput) as caught:
        inputs.load_spec("user_data: ./user-data\ndoca_profile: doca-all\n", "build.yaml")
    (problem,) = caught.value.problems
    assert problem.field == "build.yaml: user_data"
    assert "--user-data" in problem.fix and "file input" in problem.fix


def test_unknown_config_keys_are_errors_with_a_suggestion() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config("doca_versoin: 3.2.2\nfoo: 1\n", source="builds/x.yaml")
    problems = caught.value.problems
    assert [p.field for p in problems] == ["builds/x.yaml: doca_versoin", "builds/x.yaml: foo"]
    assert "doca_version" in problems[0].fix
    assert "3.2.2" not in caught.value.render()  # values of unknown keys are never shown


@pytest.mark.parametrize("text", ["- a\n- b\n", "key: [unclosed\n"])
def test_bad_config_files(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_config(text)


def test_booleans_from_strings_and_bad_booleans() -> None:
    assert build_spec({}, {"cis_hardening": "true"}).cis_hardening is True
    assert ("fips_enabled", "maybe") in problems_of(fips_enabled="maybe")


def test_field_kinds_are_consistent() -> None:
    for name in LIST_FIELDS:
        assert isinstance(default(name), tuple)
    for name in BOOL_FIELDS:
        assert default(name) is False


@pytest.mark.parametrize(
    "url", ["http://user:s3cret@proxy.example.com:3128", "http://s3cret@proxy.example.com:3128"]
)
def test_proxy_credentials_are_refused_and_redacted(url: str) -> None:
    """A password, or a token passed as the user, would reach the image history
    (CanvOS's Dockerfile declares ARG HTTPS_PROXY)."""
    with pytest.raises(InvalidInput) as caught:
        build_spec({}, {"https_proxy": url})
    (problem,) = caught.value.problems
    assert problem.field == "https_proxy"
    assert problem.value == "http://***@proxy.example.com:3128"
    assert "image history" in problem.message and "source address" in problem.fix
    assert "s3cret" not in caught.value.render()
    # a spec that skipped validation is still shown redacted
    assert as_dict(BuildSpec(https_proxy=url))["https_proxy"] == "http://***@proxy.example.com:3128"
    assert build_spec({}, {"https_proxy": "http://proxy.example.com:3128"}).https_proxy
    for bad in ("user:s3cret@proxy", "http://user:s3cret@proxy:3128/ x"):
        with pytest.raises(InvalidInput) as caught:
            build_spec({}, {"http_proxy": bad})
        assert "s3cret" not in caught.value.render()


def test_doca_packages_are_names_and_reach_the_doca_install_arg() -> None:
    spec = build_spec({"doca_packages": ["mlnx-nfsrdma-dkms", "mlnx-nvme-dkms"]})
    assert spec.doca_packages == ("mlnx-nfsrdma-dkms", "mlnx-nvme-dkms")
    template = (Path(__file__).parents[2] / "overlays/doca/Dockerfile.fragment").read_text()
    block = canvos.render_doca_block(template, canvos.block_values(spec, (), "online", False))
    # An input of the DOCA install step: declared before its RUN.
    arg = block.index('ARG DOCA_PACKAGES="mlnx-nfsrdma-dkms mlnx-nvme-dkms"')
    assert arg < block.index("doca-install.sh")
    with pytest.raises(InvalidInput) as caught:
        build_spec({"doca_packages": ["mlnx-nfsrdma-dkms", "Bad_Name"]})
    (problem,) = caught.value.problems
    assert (problem.field, problem.value) == ("doca_packages", "Bad_Name")
    assert "not a Debian package name" in str(caught.value)
