"""Data sets (real layouts and generated ones), image loading, transforms, samplers and loaders."""
from .image import IMAGE_EXTENSIONS, ImageReadError, read_image
from .records import DatasetError, ReIDDataset, Sample
from .registry import DATASETS, build_dataset, dataset_from_config
from .transforms import BatchAugment, denormalize, load_resized, normalize
from .samplers import BatchStream, pk_batches, shuffled_batches
from .dataloaders import ImageDataset, UnlabeledDataset, test_loader, train_loader

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "read_image", "DatasetError", "ReIDDataset", "Sample",
           "DATASETS", "build_dataset", "dataset_from_config", "BatchAugment", "denormalize", "load_resized", "normalize",
           "BatchStream", "pk_batches", "shuffled_batches", "ImageDataset", "UnlabeledDataset",
           "test_loader", "train_loader"]

from . import synthetic  # noqa: E402,F401  registers the "synthetic" data set (light: the world loads on use)
