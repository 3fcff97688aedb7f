"""The generative networks DG-Net and GCL share: the structure encoder (grey image → structure map),
the AdaIN decoder (structure map + appearance code → image) and the multi-scale LSGAN
discriminators, with their building blocks."""
from .decoder import Decoder
from .discriminator import MultiScaleDiscriminator
from .structure import StructureEncoder, to_grey

__all__ = ["Decoder", "MultiScaleDiscriminator", "StructureEncoder", "to_grey"]
