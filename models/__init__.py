"""Networks. A model module knows nothing of data sets, files or logging."""
from .backbones import IBN, ResNetBackbone
from .pooling import GeM, build_pooling
from .heads import BNNeck, IdHead
from .reid_net import ReIDNet, ReIDOutput, build_reid_net
from .weights import WeightsError
from .dgnet import DGNet, build_dgnet, build_dgnet_from_state

__all__ = ["IBN", "ResNetBackbone", "GeM", "build_pooling", "BNNeck", "IdHead", "ReIDNet",
           "ReIDOutput", "build_reid_net", "WeightsError", "DGNet", "build_dgnet",
           "build_dgnet_from_state"]
