"""Data: prepared tensors, patch and image datasets, and the LightningDataModule."""

from afm_sr.data.datamodule import AFMDataModule, split_groups
from afm_sr.data.datasets import ImageBatch, ImageDataset, PatchBatch, PatchDataset, Units
from afm_sr.data.prepare import Prepared, prepare

__all__ = ["AFMDataModule", "ImageBatch", "ImageDataset", "PatchBatch", "PatchDataset", "Prepared", "Units", "prepare",
           "split_groups"]
