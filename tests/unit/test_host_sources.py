"""``host_files`` entries that name a file (``source:``): read relative to the
--config file's directory (a preset's: the presets directory), bounded, text
only, never outside the root, never quoted; then the same as inline content."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import hostitems, hostsources, inputs, presets, spec, textfile
from pipeline.errors import InvalidInput
from tests.unit.conftest import run

SECRET = "s3cr3t-Sentinel-4d1f09"
TEXT = "configure system hostname .\nconfigure lldp portidsubtype iframe\n"
LIMIT = spec.HOST_FILE_LIMIT


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config directory with one source file under files/."""
    root = tmp_path / "site"
    (root / "files").mkdir(parents=True)
    (root / "files" / "lldpd.conf").write_text(TEXT)
    return root


def config(root: Path, *entries: str) -> Path:
    """``root/knobs.yaml`` with the given ``host_files`` entries (YAML lines)."""
    path = root / "knobs.yaml"
    path.write_text("host_files:\n" + "".join(f"  {e}\n" for e in entries))
    return path


def error_of(path: Path) -> str:
    """The CLI's stderr for ``plan --config path`` (which must fail with 2)."""
    code, _, err = run("plan", "--config", str(path))
    assert code == 2, err
    return err


def layout(spec_: spec.BuildSpec) -> dict[str, str]:
    return hostitems.context_files(hostitems.from_spec(spec_))


# ------------------------------------------------------------ same as inline


def test_a_source_gives_the_same_host_layout_as_inline_content(
    site: Path, canvos_tree: Path, tmp_path: Path
) -> None:
    sourced = config(site, '/etc/lldpd.d/rcp-lldpd.conf: {source: files/lldpd.conf, mode: "0600"}')
    inline = tmp_path / "inline.yaml"
    inline.write_text(
        'host_files:\n  /etc/lldpd.d/rcp-lldpd.conf:\n    mode: "0600"\n    content: |\n'
        + "".join(f"      {line}\n" for line in TEXT.splitlines())
    )
    rendered = {}
    for name, path in (("sourced", sourced), ("inline", inline)):
        out = tmp_path / name
        code, _, err = run(
            "render", "--canvos", str(canvos_tree), "--out", str(out), "--config", str(path)
        )
        assert code == 0, err
        host = out / hostitems.HOST_DIR
        rendered[name] = {
            str(p.relative_to(host)): p.read_bytes() for p in sorted(host.rglob("*")) if p.is_file()
        }
    assert rendered["sourced"] == rendered["inline"]
    digest = next(k for k in rendered["inline"] if k.startswith("files/"))
    assert rendered["sourced"][digest] == TEXT.encode()


def test_the_placed_file_is_the_inline_one_plus_where_it_came_from(site: Path) -> None:
    path = config(site, "/etc/a.conf: {source: files/lldpd.conf}")
    (placed,) = inputs.load_spec(path.read_text(), str(path), root=site).host_files
    assert placed == spec.PlacedFile(
        "/etc/a.conf", TEXT, spec.DEFAULT_FILE_MODE, "files/lldpd.conf"
    )
    # the manifest record does not depend on the origin
    assert spec.file_record(placed) == spec.file_record(spec.PlacedFile("/etc/a.conf", TEXT))


def test_sources_are_relative_to_the_config_not_the_working_directory(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(site, '/etc/lldpd.d/site.conf: {source: files/lldpd.conf, mode: "0644"}')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run("plan", "--config", os.path.relpath(path, elsewhere))
    assert code == 0, err
    size = len(TEXT.encode())
    assert f"/etc/lldpd.d/site.conf (mode 0644, {size} bytes, from files/lldpd.conf)" in out
    assert TEXT.splitlines()[0] not in out


def test_a_link_that_stays_inside_the_directory_is_followed(site: Path) -> None:
    (site / "current.conf").symlink_to("files/lldpd.conf")
    (site / "linked").symlink_to("files")
    path = config(
        site, "/etc/a.conf: {source: current.conf}", "/etc/b.conf: {source: linked/lldpd.conf}"
    )
    built = inputs.load_spec(path.read_text(), str(path), root=site)
    assert [f.content for f in built.host_files] == [TEXT, TEXT]


# -------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("../outside.conf", "leads out of its directory ('..')"),
        ("files/../../outside.conf", "leads out of its directory ('..')"),
        ("/etc/passwd", "is absolute"),
        ("files//lldpd.conf", "is not a normal relative path"),
        ("./files/lldpd.conf", "is not a normal relative path"),
        ("files/$(reboot)", "is not a normal relative path"),
        ("''", "must be a relative file path"),
        ("[a, b]", "must be a relative file path"),
    ],
)
def test_a_source_path_must_be_relative_normal_and_plain(
    site: Path, source: str, message: str
) -> None:
    (site.parent / "outside.conf").write_text(SECRET)
    err = error_of(config(site, f"/etc/a.conf: {{source: {source}}}"))
    assert "host_files[/etc/a.conf].source" in err and message in err and "Fix:" in err
    assert SECRET not in err


def test_a_link_leading_outside_the_directory_is_refused(site: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.conf"
    secret.write_text(SECRET)
    (site / "files" / "out.conf").symlink_to(secret)
    (site / "up").symlink_to(tmp_path)
    err = error_of(
        config(
            site, "/etc/a.conf: {source: files/out.conf}", "/etc/b.conf: {source: up/secret.conf}"
        )
    )
    for dest in ("/etc/a.conf", "/etc/b.conf"):
        assert f"host_files[{dest}].source" in err
    assert err.count("leads outside") == 2 and SECRET not in err


def test_a_missing_file_names_the_entry_and_the_relative_path(site: Path) -> None:
    err = error_of(config(site, "/etc/a.conf: {source: files/lldp.conf}"))
    assert "host_files[/etc/a.conf].source='files/lldp.conf': is not a file in" in err
    assert str(site) in err


def test_a_directory_is_no_source(site: Path) -> None:
    err = error_of(config(site, "/etc/a.conf: {source: files}"))
    assert "host_files[/etc/a.conf].source='files': is a directory, not a regular file" in err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (SECRET.encode() + b"\0\x01\x02", "is binary (a NUL byte at offset"),
        (SECRET.encode() + b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_a_binary_file_is_refused_without_quoting_it(site: Path, data: bytes, message: str) -> None:
    (site / "files" / "blob").write_bytes(data)
    err = error_of(config(site, "/etc/a.conf: {source: files/blob}"))
    assert "host_files[/etc/a.conf].source='files/blob'" in err and message in err
    assert SECRET not in err


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every os.read's length, as the bounded reader performs them."""
    sizes: list[int] = []
    real = os.read

    def counting(fd: int, n: int) -> bytes:
        data = real(fd, n)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting)
    yield sizes


def test_a_file_of_the_limit_passes_one_byte_more_is_refused(
    site: Path, bytes_read: list[int]
) -> None:
    (site / "files" / "full").write_text("a" * LIMIT)
    (site / "files" / "over").write_text(SECRET + "a" * LIMIT)
    full = config(site, "/etc/a.conf: {source: files/full}")
    (placed,) = inputs.load_spec(full.read_text(), str(full), root=site).host_files
    assert len(placed.content) == LIMIT
    bytes_read.clear()
    with pytest.raises(InvalidInput) as raised:
        path = config(site, "/etc/a.conf: {source: files/over}")
        inputs.load_spec(path.read_text(), str(path), root=site)
    (problem,) = raised.value.problems
    assert problem.field == "host_files[/etc/a.conf].source"
    assert f"is larger than {textfile.size_text(LIMIT)}" in problem.message
    assert sum(bytes_read) <= LIMIT + 1 and SECRET not in str(raised.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{source: files/lldpd.conf, content: x}", "has both content and source"),
        ('{mode: "0644"}', "has neither content nor source"),
    ],
)
def test_content_and_source_together_or_neither_are_refused(
    site: Path, entry: str, message: str
) -> None:
    err = error_of(config(site, f"/etc/a.conf: {entry}"))
    assert f"host_files[/etc/a.conf]: {message}; a file takes its text from exactly one" in err


def test_a_source_with_no_directory_to_read_it_from_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        inputs.load_spec("host_files:\n  /etc/a.conf: {source: a.conf}\n", "config")
    (problem,) = raised.value.problems
    assert problem.field == "host_files[/etc/a.conf].source"
    assert "was not read" in problem.message and "--host-files-dir" in problem.fix


def test_every_bad_source_is_reported_at_once(site: Path) -> None:
    err = error_of(
        config(site, "/etc/a.conf: {source: nope}", "/etc/b.conf: {source: ../x}",
               "/etc/c.conf: {source: files}")
    )  # fmt: skip
    assert err.startswith("canvos-doca: invalid input (3 problems)")


def test_force_never_deletes_a_source_it_read(site: Path, canvos_tree: Path) -> None:
    out = site / "out"
    assert run("render", "--canvos", str(canvos_tree), "--out", str(out))[0] == 0
    (out / "extra.conf").write_text(TEXT)  # a file kept in an old output by mistake
    path = config(site, "/etc/a.conf: {source: out/extra.conf}")
    code, _, err = run(
        "render", "--canvos", str(canvos_tree), "--out", str(out), "--force", "--config", str(path)
    )
    assert code == 2, err
    assert "holds host_files[/etc/a.conf].source" in err
    assert (out / "extra.conf").read_text() == TEXT


# ---------------------------------------------------------------- presets


def test_a_preset_reads_its_sources_from_the_presets_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presets, "directory", lambda: tmp_path)
    presets.load.cache_clear()
    try:
        (tmp_path / "files").mkdir()
        (tmp_path / "files" / "site.conf").write_text(TEXT)
        (tmp_path / "site.yaml").write_text(
            "description: x\nhost_files:\n  /etc/site.conf: {source: files/site.conf}\n"
        )
        (tmp_path / "escape.yaml").write_text(
            "description: x\nhost_files:\n  /etc/site.conf: {source: ../secret}\n"
        )
        built = inputs.load_spec(None, "config", {"preset": "site"})
        assert [(f.content, f.source) for f in built.host_files] == [(TEXT, "files/site.conf")]
        assert presets.sources(built) == {"host_files": "preset"}
        with pytest.raises(InvalidInput, match="leads out of its directory"):
            presets.load("escape")
    finally:
        presets.load.cache_clear()


def test_requests_leave_inline_and_malformed_entries_to_the_spec() -> None:
    layer = {
        "host_files": {
            "/etc/a": {"content": "x"},
            "/etc/b": {"source": "b.conf", "content": "x"},
            "/etc/c": "text",
            "/etc/d": {"source": "d.conf"},
            "/etc/e": {"source": spec.Sourced("e.conf", "read")},
        }
    }
    wanted, problems = hostsources.requests(layer)
    assert wanted == [hostsources.Request("/etc/d", "d.conf")] and not problems


# ------------------------------------------------------------------ docs


def test_the_guides_example_config_plans_with_its_source_next_to_it(tmp_path: Path) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "ai-ra-infra.md").read_text()
    section = guide[guide.index("### Your own host's items") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", 8)]
    assert "source: files/my-tuning.service" in example
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "my-tuning.service").write_text("[Unit]\nDescription=x\n")
    (tmp_path / "knobs.yaml").write_text(example)
    code, out, err = run("plan", "--config", str(tmp_path / "knobs.yaml"))
    assert code == 0, err
    unit = "/usr/lib/systemd/system/my-tuning.service"
    assert f"{unit} (mode 0644, 21 bytes, from files/my-tuning.service)" in out
