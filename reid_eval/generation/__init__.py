"""Generation metrics: SSIM of reconstructions, FID against real images, LPIPS diversity."""
from .diversity import ALEXNET_FILE, LPIPSDistance, pairwise_diversity
from .fid import INCEPTION_FILE, fid, fid_inception, frechet_distance, inception_features, statistics
from .ssim import gaussian_kernel, ssim

__all__ = ["ALEXNET_FILE", "LPIPSDistance", "pairwise_diversity", "INCEPTION_FILE", "fid", "fid_inception",
           "frechet_distance", "inception_features", "statistics", "gaussian_kernel", "ssim"]
