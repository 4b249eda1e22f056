"""Data: real offline datasets (docs/algorithms.md §7, §9) and user image folders.

Bundled datasets are read from files that ship inside installed packages; nothing is
downloaded. :mod:`cnnlens.zoo` is the name-based entry point (``zoo.load_dataset(name)``).
"""
from __future__ import annotations

from .datasets import (
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    PHOTO_NAMES,
    ImageDataset,
    load_fashion_mnist,
    load_lfw_faces,
    load_mnist,
    load_photos,
)
from .folder import IGNORED_FOLDERS, is_class_folder, is_image_file, load_image_folder, load_images, read_image
from .imageset import resize_center_crop
from .stream import ImageStream, image_chunk

__all__ = [
    "ImageDataset",
    "PHOTO_NAMES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "load_photos",
    "load_lfw_faces",
    "load_mnist",
    "load_fashion_mnist",
    "load_image_folder",
    "load_images",
    "read_image",
    "is_class_folder",
    "is_image_file",
    "IGNORED_FOLDERS",
    "resize_center_crop",
    "ImageStream",
    "image_chunk",
]
