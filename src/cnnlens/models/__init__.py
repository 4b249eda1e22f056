"""Plain-torch definitions of the pretrained networks that :mod:`cnnlens.zoo` loads.

Each is written from its paper/architecture description with parameter names that match the
offline state dicts (DESIGN.md, "Data and pretrained models that exist offline").
"""
from __future__ import annotations

from .efficientnet_lite import EfficientNetLite
from .fashion import FashionDepthCNN, FashionVGG, fashion_pair_seq
from .mnist_cnn import MnistCNN
from .mobilenet_v2 import MobileNetV2
from .mtcnn import FACE_CLASS_NAMES, FaceClassifierNet, ONet, RNet
from .texture import texture_cnn

__all__ = ["MobileNetV2", "RNet", "ONet", "FaceClassifierNet", "FACE_CLASS_NAMES", "MnistCNN",
           "FashionVGG", "FashionDepthCNN", "fashion_pair_seq", "EfficientNetLite", "texture_cnn"]
