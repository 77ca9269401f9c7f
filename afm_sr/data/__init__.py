"""Data: prepared tensors, patch and image datasets, and the LightningDataModule."""

from afm_sr.data.datamodule import AFMDataModule, split_groups
from afm_sr.data.datasets import ImageDataset, PatchDataset
from afm_sr.data.prepare import Prepared, prepare

__all__ = ["AFMDataModule", "ImageDataset", "PatchDataset", "Prepared", "prepare", "split_groups"]
