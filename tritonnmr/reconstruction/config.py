"""Training options: :class:`Config`, with ``QUICK`` (a CPU in minutes) and ``FULL`` (the paper's sizes)."""
from dataclasses import dataclass, field


@dataclass
class Config:
    """Training options; ``QUICK`` (CPU, minutes) and ``FULL`` (the paper's sizes) below."""
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

    def model_options(self):
        return {"width": self.width, "dim": self.dim}


QUICK = Config(iterations=400, batch_size=16, lr=1e-3, width=16, dim=128, eval_views=[0, 6, 12, 18])
FULL = Config()
