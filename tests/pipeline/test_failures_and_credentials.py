"""Actionable failure messages and credential placement (pure parts)."""

from __future__ import annotations

import pytest
import yaml

from pipeline import credentials, failures
from pipeline.errors import InvalidInput
from pipeline.spec import BuildSpec

LOG = "\n".join(f"line {n}" for n in range(200))


def test_failure_names_the_step_and_keeps_the_log_tail() -> None:
    text = failures.explain("Earthly +iso", 1, LOG, "ERROR Earthfile line 12: boom\n")
    assert text.startswith("Earthly +iso failed (exit code 1).")
    assert "ERROR Earthfile line 12: boom" in text
    assert "line 199" in text and "line 100" not in text
    assert f"Last {failures.TAIL_LINES} lines" in text


def test_disk_exhaustion_is_named() -> None:
    text = failures.explain("Earthly +iso", 1, "write /tmp/x: no space left on device", "")
    assert "Disk exhausted" in text and "plan" in text and "local-cache prune" in text


def test_privileged_refusal_is_explained() -> None:
    out = "Container appears to be running unprivileged. Currently, privileged mode is required"
    text = failures.explain("Earthly +iso", 1, "", out)
    assert "Privileged execution refused" in text and "root capabilities" in text
    query = failures.explain_query("Earthly +iso", "insecure root capabilities are not allowed")
    assert "Privileged execution refused" in query


def test_unknown_failure_has_no_made_up_cause() -> None:
    text = failures.explain("verify x", 2, "FAIL  dkms installed", "")
    assert "Disk" not in text and "Privileged" not in text


def test_registry_hosts_cover_mirrors_and_target_registry() -> None:
    spec = BuildSpec(
        spectro_pub_repo="mirror.corp/palette",
        kairos_base_image_url="mirror.corp/edge",
        image_registry="registry.corp:5000/edge",
    )
    assert credentials.registry_hosts(spec) == ("mirror.corp", "registry.corp:5000")
    assert credentials.registry_hosts(BuildSpec()) == ("localhost:5000",)


def test_edge_host_token_is_placed_in_stylus_site() -> None:
    user_data = "#cloud-config\ninstall:\n  device: auto\nstylus:\n  site:\n    name: edge-1\n"
    merged = credentials.with_edge_host_token(user_data, "tok-123")
    assert merged.startswith("#cloud-config\n")
    data = yaml.safe_load(merged)
    assert data["stylus"]["site"] == {"name": "edge-1", "edgeHostToken": "tok-123"}
    assert data["install"] == {"device": "auto"}
    created = yaml.safe_load(credentials.with_edge_host_token("#cloud-config\n", "t"))
    assert created == {"stylus": {"site": {"edgeHostToken": "t"}}}


def test_edge_host_token_error_never_shows_the_token() -> None:
    with pytest.raises(InvalidInput) as caught:
        credentials.with_edge_host_token("stylus: [1, 2]\n", "tok-secret-999")
    assert "tok-secret-999" not in str(caught.value)


def test_split_secrets_keeps_a_user_data_without_secrets_as_written() -> None:
    text = "#cloud-config\n# a comment\ninstall:\n  device: auto\n"
    assert credentials.split_secrets(text) == credentials.UserDataSecrets(public=text)


def test_split_secrets_replaces_every_secret_and_the_flag_wins() -> None:
    text = (
        "#cloud-config\nstylus:\n  site:\n    edgeHostToken: from-file\n"
        "  registryCredentials:\n    - domain: a\n      password: pw-a\n"
        "    - domain: b\n      password: pw-b\n"
    )
    split = credentials.split_secrets(text, "from-flag")
    public, full = yaml.safe_load(split.public), yaml.safe_load(split.full or "")
    placeholder = credentials.PLACEHOLDER
    assert public["stylus"]["site"]["edgeHostToken"] == placeholder
    assert [r["password"] for r in public["stylus"]["registryCredentials"]] == [placeholder] * 2
    assert full["stylus"]["site"]["edgeHostToken"] == "from-flag"
    assert [r["password"] for r in full["stylus"]["registryCredentials"]] == ["pw-a", "pw-b"]
    for secret in ("from-file", "from-flag", "pw-a", "pw-b"):
        assert secret not in split.public
