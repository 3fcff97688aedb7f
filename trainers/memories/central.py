"""Central Feature Learning's memory: one central feature per image, steered by a PID rule.

With the error e = x - c between an image's new feature x and its central feature c:

    I <- I + e
    c <- c + kp * e + ki * I + kd * (e - e_previous)

kp alone is the usual momentum update c <- (1 - kp) c + kp x (CFL's image-level memory, with
kp = 0.1); the CFL code steers its patch memory with kp 0.1-0.2, ki 0-0.5, kd 0.1-0.2. Its
derivative term subtracts the residual left after the previous update (x_prev - c_new),
which makes it x - x_prev; here it is the textbook difference of successive errors.
"""
import torch
from torch import nn


class CentralFeatureMemory(nn.Module):
    """Central features of N images, any per-image shape: (P, D) patches or (D,).

    Initialised from a pass over all images (the reference does one before training). No
    normalisation: PAUL's patch features are unit vectors, its image embeddings are not.
    """

    def __init__(self, features, kp=0.1, ki=0.0, kd=0.0):
        super().__init__()
        self.kp, self.ki, self.kd = kp, ki, kd
        central = torch.as_tensor(features).detach().float().clone()
        self.register_buffer("central", central)
        self.register_buffer("integral", torch.zeros_like(central))
        self.register_buffer("last_error", torch.zeros_like(central))

    @torch.no_grad()
    def update(self, indexes, features):
        """One PID step per image in the batch, towards the mean of its rows (its augmented
        views), so repeated indexes do not step twice."""
        unique, inverse, counts = indexes.unique(return_inverse=True, return_counts=True)
        features = features.detach().to(self.central.dtype)  # fp32 under AMP
        x = features.new_zeros((len(unique),) + features.shape[1:]).index_add_(0, inverse, features)
        x /= counts.view((-1,) + (1,) * (x.ndim - 1))
        error = x - self.central[unique]
        integral = self.integral[unique] + error
        step = self.kp * error + self.ki * integral + self.kd * (error - self.last_error[unique])
        self.central = self.central.index_copy(0, unique, self.central[unique] + step)
        self.integral = self.integral.index_copy(0, unique, integral)
        self.last_error = self.last_error.index_copy(0, unique, error)
