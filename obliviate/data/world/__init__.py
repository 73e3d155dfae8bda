"""The embedded synthetic world: `build_world` writes it from a `WorldSpec` (see `build`); `players`, `text` and
`images` hold its players, its words in 9 languages and its pictures."""
from obliviate.data.world.build import (FAKEABLE, IMAGE_ATTRIBUTES, PRIVATE, SHARED, TEXT_ATTRIBUTES, WorldSpec,
                                        build_world)

__all__ = ["FAKEABLE", "IMAGE_ATTRIBUTES", "PRIVATE", "SHARED", "TEXT_ATTRIBUTES", "WorldSpec", "build_world"]
