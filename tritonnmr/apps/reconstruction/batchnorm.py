"""Batch normalisation over the global batch of all ranks, on the CPU (gloo) as on GPUs.

With DistributedDataParallel each rank sees only its part of the batch; plain BatchNorm would then
normalise every part by its own statistics, and N ranks would not take the steps one process takes
on the whole batch. :class:`GlobalBatchNorm` sums its statistics over the ranks (torch's
SyncBatchNorm does this on GPUs only). Same parameters, buffers and state_dict keys as the
BatchNorm it replaces, so checkpoints load in either; in eval mode, or outside a process group of
several ranks, it is plain BatchNorm.
"""
import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm


class _SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the ranks. Every rank's loss depends on the sum, so the gradient of
    each rank's input is the sum of the ranks' gradients of the sum: again a sum over the ranks."""

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.detach().clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


def _global_sum(tensor):
    return _SumOverRanks.apply(tensor)


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm (any input (N, C, ...)) whose training statistics are those of every rank's batch together.

    One collective per layer and pass (as torch's SyncBatchNorm): the ranks sum n, sum(d) and sum(d^2)
    of d = x - K, K being the running mean (the same on every rank, and near the batch's mean once
    training has begun, so the one-pass variance sum(d^2) / n - (sum(d) / n)^2 loses no precision to
    cancellation). Running statistics are updated with the unbiased variance, as BatchNorm does."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dimensions (N, C, ...), got {input.dim()}")

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        shift = self.running_mean.detach() if self.track_running_stats else x.new_zeros(x.shape[1])
        d = x - shift.view(shape)
        local = x.new_tensor([x.numel() // x.shape[1]])
        sums = _global_sum(torch.cat([d.sum(dims), (d * d).sum(dims), local]))
        count = sums[-1].detach()
        offset = sums[:x.shape[1]] / count  # mean - shift
        variance = (sums[x.shape[1]:-1] / count - offset * offset).clamp(min=0)
        mean = shift + offset
        y = (x - mean.view(shape)) * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(variance.detach() * count / (count - 1).clamp(min=1), factor)
        return y


def globalize(module):
    """Replace every BatchNorm inside ``module`` with a :class:`GlobalBatchNorm` of the same settings,
    parameters and running statistics, in place -> ``module``."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, GlobalBatchNorm):
            tensors = list(child.parameters()) + list(child.buffers())
            replacement = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                          child.track_running_stats, device=tensors[0].device if tensors else None)
            replacement.load_state_dict(child.state_dict())
            replacement.train(child.training)
            setattr(module, name, replacement)
        else:
            globalize(child)
    return module


__all__ = ["GlobalBatchNorm", "globalize"]
