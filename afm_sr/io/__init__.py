"""Reading and writing AFM files as HeightMap objects (meters, pixel size, channel, metadata)."""

from afm_sr.io.api import ChannelInfo, FileInfo, check_output, describe, list_channels, read, reserve_write, write
from afm_sr.io.formats import FORMATS, Format
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.writers import WRITERS

__all__ = [
           "FORMATS",
           "WRITERS",
           "ChannelInfo",
           "FileInfo",
           "Format",
           "HeightMap",
           "check_output",
           "describe",
           "list_channels",
           "read",
           "reserve_write",
           "write",
]
