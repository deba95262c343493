"""Minimal Earthfiles written for the tests, laid out the way CanvOS lays
out the lines canvos-doca reads (checked on spectrocloud/CanvOS v4.6.24,
v4.9.38 and main, 2026-11). They carry only those lines: the registry and
FIPS switch, the Kairos base rule (22-style, UKI and X.Y tags), PE_VERSION,
the Ubuntu Pro contract and the ARGs the .arg keys set (every tag from
v4.5.15 declares the common ones; FORCE_INTERACTIVE_INSTALL from v4.9).
"""

from __future__ import annotations

PUB_REPO = "us-docker.pkg.dev/palette-images"
FIPS_REPO = "us-docker.pkg.dev/palette-images-fips"


# The .arg keys every CanvOS tag from v4.5.15 declares.
COMMON_ARGS = """ARG CUSTOM_TAG
ARG IMAGE_REGISTRY
ARG IMAGE_REPO=$OS_DISTRIBUTION
ARG K8S_DISTRIBUTION
ARG ISO_NAME=installer
ARG HTTP_PROXY
ARG HTTPS_PROXY
ARG NO_PROXY
ARG UPDATE_KERNEL=false
ARG CLUSTERCONFIG
ARG CIS_HARDENING=false
ARG EDGE_CUSTOM_CONFIG
ARG IS_UKI=false
ARG SPECTRO_LUET_REPO=us-docker.pkg.dev/palette-images/edge
"""


def _earthfile(head: str, tag_arg: str, pro: str) -> str:
    return f"""VERSION --arg-scope-and-set --shell-out-anywhere 0.6
ARG SPECTRO_PUB_REPO={PUB_REPO}
FROM $SPECTRO_PUB_REPO/edge/canvos/alpine:3.20

ARG FIPS_ENABLED=false
IF [ "$FIPS_ENABLED" = "true" ] && [ "$SPECTRO_PUB_REPO" = "{PUB_REPO}" ]
    LET SPECTRO_PUB_REPO={FIPS_REPO}
END

ARG KAIROS_BASE_IMAGE_URL=$SPECTRO_PUB_REPO/edge
{COMMON_ARGS}{head}
ARG OS_DISTRIBUTION
ARG OS_VERSION
ARG K8S_VERSION
ARG ARCH
ARG IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:$K8S_DISTRIBUTION-$K8S_VERSION-$IMAGE_TAG
ARG DRBD_VERSION="9.2.13"

IF [ "$OS_DISTRIBUTION" = "ubuntu" ] && [ "$BASE_IMAGE" = "" ]
    IF [ "$OS_VERSION" == 22 ] || [ "$OS_VERSION" == 20 ]
        ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION.04-core-$ARCH-generic-${tag_arg}
    ELSE
        IF [ "$IS_UKI" = "true" ]
            ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-${tag_arg}-uki
        ELSE
            ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-${tag_arg}
        END
    END
    ARG BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG
END

base-image:
    FROM DOCKERFILE --build-arg BASE=$BASE_IMAGE --build-arg OS_DISTRIBUTION=$OS_DISTRIBUTION .
    IF [ "$OS_DISTRIBUTION" = "ubuntu" ] && [ "$ARCH" = "amd64" ]
{pro}
    END
"""


# v4.9.x: the tag is KAIROS_VERSION; the Pro key is a build arg.
V4_9_PE_VERSION = "v4.9.38"
V4_9_KAIROS = "v4.0.4"
V4_9 = _earthfile(
    f"ARG PE_VERSION={V4_9_PE_VERSION}\nARG KAIROS_VERSION={V4_9_KAIROS}\nARG UBUNTU_PRO_KEY\n"
    "ARG FORCE_INTERACTIVE_INSTALL=false",
    "KAIROS_VERSION",
    '        IF [ ! -z "$UBUNTU_PRO_KEY" ]\n'
    "            RUN pro attach $UBUNTU_PRO_KEY\n"
    "        END",
)

# main: the tag is KAIROS_INIT_VERSION (KAIROS_VERSION is still declared);
# the Pro key is an Earthly secret switched on by UBUNTU_PRO_ATTACH.
MAIN_PE_VERSION = "v4.10.0-rc.2"
MAIN_KAIROS_INIT = "v0.17.1"
MAIN = _earthfile(
    f"ARG PE_VERSION={MAIN_PE_VERSION}\nARG KAIROS_VERSION=v4.1.2\n"
    f"ARG KAIROS_INIT_VERSION={MAIN_KAIROS_INIT}\nARG UBUNTU_PRO_ATTACH=false\n"
    "ARG FORCE_INTERACTIVE_INSTALL=false\nARG INSTALL_NVIDIA_GPU_DRIVERS=false\n"
    "ARG NVIDIA_DRIVER_BRANCH=580\nARG NVIDIA_DRIVER_TYPE=open",
    "KAIROS_INIT_VERSION",
    '        IF [ "$UBUNTU_PRO_ATTACH" = "true" ]\n'
    "            RUN --secret UBUNTU_PRO_KEY \\\n"
    "                printf 'token: %s\\n' \"$UBUNTU_PRO_KEY\" > /tmp/pro.yaml && \\\n"
    "                pro attach --attach-config /tmp/pro.yaml && rm -f /tmp/pro.yaml\n"
    "        END",
)

# v4.5.15 / v4.6.24: Kairos v3 bases, no FORCE_INTERACTIVE_INSTALL, no
# Ubuntu Pro contract.
V4_6_PE_VERSION = "v4.6.24"
V4_6_KAIROS = "v3.1.3"
V4_6 = _earthfile(
    f"ARG PE_VERSION={V4_6_PE_VERSION}\nARG KAIROS_VERSION={V4_6_KAIROS}",
    "KAIROS_VERSION",
    "        RUN true",
)

# The v4.10.0 tag: a changelog-only tag whose Earthfile still pins v4.9.21.
V4_10_0_PE_VERSION = "v4.9.21"
V4_10_0 = V4_9.replace(f"ARG PE_VERSION={V4_9_PE_VERSION}", f"ARG PE_VERSION={V4_10_0_PE_VERSION}")

# An old ref: neither Ubuntu Pro contract, no Kairos base rule.
OLD = """VERSION 0.6
ARG PE_VERSION=v4.4.0

base-image:
    FROM DOCKERFILE --build-arg BASE=$BASE_IMAGE .
"""
