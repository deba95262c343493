"""Dagger module constructor arguments the CLI has no flag for, each with
what to do instead on the CLI path (``canvos-doca render`` + CanvOS's
``earthly.sh``).

The keys are the constructor's argument names (``pipeline/main.py``); a test
(tests/pipeline/test_module_knobs.py) checks they are exactly the ones that
are not CLI flags. The CLI names them when a user passes one of them, never
with its value (most are secrets).
"""

from __future__ import annotations

from typing import Final

from pipeline import facts

_DOCKER_LOGIN = (
    "run docker login for that registry before earthly.sh (Earthly uses your docker credentials)"
)

DAGGER_ONLY: Final[dict[str, str]] = {
    "edge_host_token": f"put the token in the --user-data file ({facts.PALETTE_EDGE_HOST_TOKEN})",
    "registry_username": _DOCKER_LOGIN,
    "registry_password": _DOCKER_LOGIN,
    "docker_config": _DOCKER_LOGIN,
    "ubuntu_pro_key": (
        "the CLI hands CanvOS no Ubuntu Pro key: give it to earthly.sh the way the "
        "checkout's Earthfile reads it (UBUNTU_PRO_ATTACH=true with an Earthly secret "
        "UBUNTU_PRO_KEY on CanvOS main; the UBUNTU_PRO_KEY arg on v4.9.x), or build with "
        "the Dagger module (docs/building.md)"
    ),
    "host_files_dir": "host_files sources are read next to the --config file",
    "overlays": "the CLI uses the overlays installed with it",
    "earthly_image": "earthly.sh of the CanvOS checkout picks the Earthly image",
    "dind_image": "earthly.sh of the CanvOS checkout runs the build",
    "iso_tool_image": "put secrets in the --user-data file; earthly.sh writes the ISO",
    "rebuild": "Earthly's cache applies (earthly.sh --no-cache rebuilds everything)",
}
