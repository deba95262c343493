"""canvos-doca: Palette Edge Appliance images with NVIDIA DOCA-Host, built with Dagger.

The Dagger module's main object is ``pipeline.main:CanvosDoca`` (the
``dagger.mod`` entry point). It is not imported here, so the engine-free CLI
(``canvos-doca``) never needs the Dagger SDK.
"""
