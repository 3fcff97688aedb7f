"""The generative networks DG-Net and GCL share: the structure encoder (grey image → structure map),
the AdaIN decoder (structure map + appearance code → image) and the multi-scale LSGAN
discriminators, with their building blocks."""
from .decoder import Decoder
from .discriminator import MultiScaleDiscriminator
from .structure import StructureEncoder, to_grey


def build_generator(gen, code_dim: int, stripes: int) -> tuple[StructureEncoder, Decoder]:
    """The structure encoder and the decoder from a config's `gen` section, for codes (B, code_dim, stripes)."""
    structure = StructureEncoder(gen.dim, gen.n_res, gen.downsample, gen.recompute)
    decoder = Decoder(structure.out_channels, code_dim, stripes, gen.mlp_dim, gen.n_res, gen.mlp_norm,
                      gen.mlp_input, gen.downsample, gen.recompute)
    return structure, decoder


__all__ = ["Decoder", "MultiScaleDiscriminator", "StructureEncoder", "build_generator", "to_grey"]
