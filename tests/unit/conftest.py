"""A CanvOS-shaped tree the rendering tests build themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.facts import CANVOS_MARKER as MARKER
from tests.earthfiles import V4_9, V4_9_PE_VERSION

PE_VERSION = V4_9_PE_VERSION

DOCKERFILE = f"""ARG BASE
FROM $BASE

ARG OS_DISTRIBUTION
RUN mkdir -p /certs
COPY certs/ /certs/

{MARKER}

####  Examples  ####
# RUN apt-get update && apt-get install nginx -y

# user customization kept below the marker
RUN echo customized > /etc/user-customization
"""

EARTHFILE = V4_9

K8S_VERSIONS = {"k3s": ["1.33.10", "1.34.6"], "rke2": ["1.34.6"]}


@pytest.fixture
def canvos_tree(tmp_path: Path) -> Path:
    root = tmp_path / "CanvOS"
    (root / "certs").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "Earthfile").write_text(EARTHFILE)
    (root / ".arg.template").write_text("CUSTOM_TAG=demo\nIMAGE_REGISTRY=ttl.sh\n")
    (root / "k8s_version.json").write_text(json.dumps(K8S_VERSIONS))
    (root / "earthly.sh").write_text("#!/bin/bash\necho earthly\n")
    return root
