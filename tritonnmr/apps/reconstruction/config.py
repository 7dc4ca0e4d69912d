"""Training options: :class:`Config`, with ``QUICK`` (a CPU in minutes) and ``FULL`` (the paper's protocol)."""
from dataclasses import dataclass, field
from typing import Optional

from ...defaults import SOFT_GAMMA, SOFT_SIGMA

LR_DROP_FACTOR = 0.1  # the learning rate is multiplied by this after ``Config.lr_drop`` of the steps


@dataclass
class Config:
    """Training options; ``QUICK`` (CPU, minutes) and ``FULL`` (the paper's protocol) below."""
    iterations: int = 20000
    batch_size: int = 64
    lr: float = 1e-4
    width: int = 64                 # encoder channels: width, 2 width, 4 width
    dim: int = 512                  # image feature size
    lambda_smoothness: float = 1e-3
    seed: int = 0
    eval_views: list = field(default_factory=lambda: list(range(24)))
    backend: str = "auto"
    anti_aliasing: bool = True      # render training silhouettes at 2x and average (the paper's choice)
    cross_views: bool = True        # predict from both views, render each prediction into both: the mean of
    #                                 four IoU losses (the paper's); False: predict from the first view only
    #                                 and render it into both, the sum of two IoU losses
    lr_drop: Optional[float] = 0.95  # the learning rate x LR_DROP_FACTOR from this fraction of the steps on
    gradient: str = "blurred_edge"  # the training renderer's gradient estimator (tritonnmr.gradients), with
    sigma: float = SOFT_SIGMA       # gradient="soft"'s sigma and gamma
    gamma: float = SOFT_GAMMA

    def learning_rate(self, step):
        """Adam's step size at training step ``step`` (0-based) of ``iterations``."""
        if self.lr_drop is not None and step >= int(self.lr_drop * self.iterations):
            return self.lr * LR_DROP_FACTOR
        return self.lr

    def renderer_options(self):
        """The training renderer's gradient keywords (Renderer's ``gradient``, ``sigma``, ``gamma``)."""
        return {"gradient": self.gradient, "sigma": self.sigma, "gamma": self.gamma}

    def model_options(self):
        return {"width": self.width, "dim": self.dim}


QUICK = Config(iterations=400, batch_size=16, lr=1e-3, width=16, dim=128, eval_views=[0, 6, 12, 18],
               cross_views=False, lr_drop=None)
FULL = Config()
