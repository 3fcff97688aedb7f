"""Generation metrics: SSIM of reconstructions, FID against real images, LPIPS diversity, CIELAB
colour differences (CIEDE2000) and Reinhard colour transfer."""
from .colour import ciede2000, lab_to_rgb, masked_mean_delta_e, reinhard_transfer, rgb_to_lab
from .diversity import ALEXNET_FILE, LPIPSDistance, pairwise_diversity
from .fid import INCEPTION_FILE, fid, fid_inception, frechet_distance, inception_features, statistics
from .ssim import gaussian_kernel, ssim

__all__ = ["ALEXNET_FILE", "LPIPSDistance", "pairwise_diversity", "INCEPTION_FILE", "fid", "fid_inception",
           "frechet_distance", "inception_features", "statistics", "gaussian_kernel", "ssim",
           "ciede2000", "lab_to_rgb", "masked_mean_delta_e", "reinhard_transfer", "rgb_to_lab"]
