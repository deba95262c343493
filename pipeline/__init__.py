"""canvos-doca: Palette Edge Appliance images with NVIDIA DOCA-Host, built with Dagger."""

from pipeline.main import CanvosDoca

__all__ = ["CanvosDoca"]
