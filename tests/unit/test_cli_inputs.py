"""What the CLI does with the values a user gives: kernel arguments, what a
local checkout means for the ref, what plan did not check, small things a
new user trips on, values accepted by mistake, and what bad input costs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import canvos, context, facts
from pipeline.description import tool_version
from pipeline.spec import BuildSpec
from tests import earthfiles
from tests.unit.conftest import git_commit_all, old_tree, render_run, run

REPO = Path(__file__).resolve().parents[2]


def block(out: Path) -> str:
    text = (out / "Dockerfile").read_text()
    return text[text.index(canvos.BLOCK_BEGIN) : text.index(canvos.BLOCK_END)]


# ------------------------------------------- kernel arguments keep their commas


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--kernel-args", "console=ttyS1,115200n8"], "console=ttyS1,115200n8"),
        (
            ["--kernel-args", "isolcpus=2-27,30-55 pci=realloc,assign-busses"],
            "isolcpus=2-27,30-55 pci=realloc,assign-busses",
        ),
        (
            ["--kernel-args", "console=ttyS1,115200n8", "--kernel-args", "iommu=pt"],
            "console=ttyS1,115200n8 iommu=pt",
        ),
    ],
)
def test_kernel_arguments_are_split_at_spaces_never_at_commas(
    canvos_tree: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    out = tmp_path / "out"
    code, stdout, err = render_run(canvos_tree, out, *args)
    assert code == 0, err
    assert f'ARG DOCA_KERNEL_ARGS="{expected}"' in block(out)
    assert f"kernel_args = {expected}" in stdout  # the plan shows them as the kernel reads them


def test_a_yaml_list_item_is_one_kernel_argument(canvos_tree: Path, tmp_path: Path) -> None:
    config = tmp_path / "build.yaml"
    config.write_text("kernel_args:\n  - console=ttyS1,115200n8\n  - isolcpus=2-27,30-55\n")
    out = tmp_path / "out"
    code, _, err = render_run(canvos_tree, out, "--config", str(config))
    assert code == 0, err
    assert 'ARG DOCA_KERNEL_ARGS="console=ttyS1,115200n8 isolcpus=2-27,30-55"' in block(out)


# ------------------------------------------------ a local checkout is what is used


def test_messages_name_the_local_checkout_and_its_pe_version(
    canvos_tree: Path, tmp_path: Path
) -> None:
    tree = old_tree(canvos_tree)
    code, _, err = render_run(tree, tmp_path / "out", "--k8s-version", "1.20.1")
    assert code == 2
    assert f"the CanvOS checkout {tree.resolve()} (PE_VERSION {earthfiles.V4_6_PE_VERSION})" in err
    assert facts.CANVOS_DEFAULT_REF not in err


def test_records_name_the_checkout_not_the_default_ref(canvos_tree: Path, tmp_path: Path) -> None:
    tree = old_tree(canvos_tree)
    commit = git_commit_all(tree)
    subprocess.run(["git", "-C", str(tree), "tag", "v4.6.24"], check=True)
    out = tmp_path / "out"
    code, stdout, err = render_run(tree, out)
    assert code == 0, err
    recorded = json.loads((out / "canvos-doca.json").read_text())
    assert recorded["canvos"] == {
        **recorded["canvos"],
        "url": str(tree.resolve()),
        "ref": "v4.6.24",
        "commit": commit,
        "pe_version": earthfiles.V4_6_PE_VERSION,
    }
    assert "canvos_ref" not in recorded["spec"]
    assert facts.CANVOS_DEFAULT_REF not in stdout


@pytest.mark.parametrize("flag", ["--canvos-ref", "--canvos-url"])
def test_a_ref_flag_with_a_local_checkout_is_refused(
    canvos_tree: Path, tmp_path: Path, flag: str
) -> None:
    value = "v4.9.38" if flag == "--canvos-ref" else "https://example.com/CanvOS.git"
    code, _, err = run("plan", "--canvos", str(canvos_tree), flag, value)
    assert code == 2 and f"{flag}" in err and "cannot be used with --canvos" in err
    # render takes no ref flag at all: it builds the checkout as it is
    with pytest.raises(SystemExit) as exited:
        render_run(canvos_tree, tmp_path / "out", flag, value)
    assert exited.value.code == 2
    assert not (tmp_path / "out").exists()


def test_a_ref_from_the_config_file_with_a_local_checkout_is_a_warning(
    canvos_tree: Path, tmp_path: Path
) -> None:
    config = tmp_path / "build.yaml"
    config.write_text("canvos_ref: v4.10.0\n")
    code, stdout, err = run("plan", "--canvos", str(canvos_tree), "--config", str(config))
    assert code == 0, err
    assert "canvos_ref v4.10.0 is not used: the CanvOS checkout" in stdout


# ------------------------------------------------ plan says what it did not check


def test_plan_without_a_checkout_lists_what_was_not_checked(canvos_tree: Path) -> None:
    code, stdout, _ = run("plan", "--install-nvidia-gpu-drivers", "--k8s-distribution", "nodeadm")
    assert code == 0
    assert f"Not checked (no --canvos: no file of CanvOS {facts.CANVOS_DEFAULT_REF} was read)" in (
        stdout
    )
    for item in canvos.CHECKOUT_CHECKS:
        assert item in stdout
    code, stdout, err = run("plan", "--canvos", str(canvos_tree))
    assert code == 0, err
    assert "Not checked" not in stdout


# --------------------------------------------------------------- small ones


def test_os_version_22_is_22_04_as_in_canvos(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = render_run(canvos_tree, out, "--os-version", "22")
    assert code == 0, err
    assert "OS_VERSION='22.04'" in (out / ".arg").read_text().splitlines()


def test_a_mistyped_flag_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["plan", "--doca-versoin", "3.2.2"])
    assert exited.value.code == 2
    assert "did you mean --doca-version" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"canvos-doca {tool_version()}"


def test_messages_never_show_python_values(canvos_tree: Path, tmp_path: Path) -> None:
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("#cloud-config\ninstall:\n  reboot: true\n  poweroff: true\n")
    code, _, err = run(
        "plan", "--user-data", str(user_data), "--install-nvidia-gpu-drivers", "--arch", "arm64"
    )
    assert code == 2
    assert "reboot: true, poweroff: true" in err and "install_nvidia_gpu_drivers=true" in err
    for python in ("True", "False", "{'", "['", "None"):
        assert python not in err
    code, stdout, _ = run("plan", "--kernel-args", "a=1 b", "--extra-packages", "x1,y2", "--opensm")
    assert code == 0
    assert "kernel_args = a=1 b" in stdout and "extra_packages = x1, y2" in stdout
    assert "opensm = true" in stdout and "['" not in stdout and "True" not in stdout


# ------------------------------------------------------ accepted by mistake


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--iso-name", "a" * 300], "300 characters long"),
        (["--k8s-version", "1.\u0663\u0664.6"], "U+0663"),
        (["--bind-mounts", "/var/lib/x:"], "bind_mounts='/var/lib/x:'"),
        (["--user-data", "/etc/passwd"], "#cloud-config"),
        (["--doca-repo-key", "/etc/passwd"], "not an OpenPGP public key"),
    ],
)
def test_values_that_used_to_pass_plan(args: list[str], words: str) -> None:
    code, _, err = run("plan", *args)
    assert code == 2 and words in err


@pytest.mark.parametrize("text", ["[]", '"1.34.6"', "{not json", '{"k3s": "1.34.6"}'])
def test_a_k8s_version_json_that_is_not_an_object_of_lists_is_refused(
    canvos_tree: Path, tmp_path: Path, text: str
) -> None:
    (canvos_tree / "k8s_version.json").write_text(text)
    code, _, err = render_run(canvos_tree, tmp_path / "out", "--k8s-version", "1.20.1")
    assert code == 2 and "k8s_version.json" in err
    assert not (tmp_path / "out").exists()


def test_a_private_key_is_refused_as_the_repo_key(tmp_path: Path) -> None:
    key = tmp_path / "doca.asc"
    key.write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF-SECRET\n")
    code, _, err = run("plan", "--doca-repo-key", str(key))
    assert code == 2 and "PRIVATE key" in err and "SECRET" not in err


# ------------------------------------------------------------------ costs


def test_thirty_thousand_k8s_versions_are_checked_in_linear_time() -> None:
    versions = tuple(f"1.{i // 100}.{i % 100}" for i in range(30_000))
    listed = json.dumps({"k3s": list(versions)})
    spec = BuildSpec(k8s_version=versions)
    parsed = context.earthfile.read(earthfiles.V4_9)
    started = time.monotonic()
    assert canvos.check_tree(spec, parsed, listed) == []
    assert time.monotonic() - started < 2.0  # a list lookup per version took 13 s


def test_ten_thousand_bad_versions_print_a_screenful() -> None:
    versions = ",".join(f"v1.{i // 100}.{i % 100}" for i in range(10_000))
    code, _, err = run("plan", "--k8s-version", versions)
    assert code == 2
    assert len(err) < 10_000  # 1.2 MB before
    assert "... and 9970 more problems (9970 for k8s_version)." in err


def test_knobs_and_plan_never_import_dagger(canvos_tree: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pipeline import cli\n"
        "for argv in sys.argv[1:]:\n"
        "    cli.main(argv.split('|'))\n"
        "loaded = sorted(m for m in sys.modules if m == 'dagger' or m.startswith('dagger.'))\n"
        "print(','.join(loaded) or 'none')\n"
    )
    commands = [
        "knobs",
        "plan",
        f"plan|--canvos|{canvos_tree}",
        f"render|--canvos|{canvos_tree}|--out|{tmp_path / 'out'}",
    ]
    done = subprocess.run(
        [sys.executable, "-c", script, *commands],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "none"
    assert (tmp_path / "out" / ".arg").is_file()  # the commands really ran
