"""The resnet VAE of keras_vae written in PyTorch, for the speed comparison of
benchmarks/resnet_benchmark.py: the same layers (keras_vae/models/resnet.py),
the same discretized logistic mixture with channel coupling
(keras_vae/distributions/logistic_mixture.py), the closed-form Gaussian KL
and Adam. Tensors are NCHW, PyTorch's native layout for convolutions."""

import math
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    def __init__(self, width, scale):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        with torch.no_grad():
            self.conv2.weight.mul_(scale)

    def forward(self, x):
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Encoder(nn.Module):
    def __init__(self, shape, widths, blocks, outputs):
        super().__init__()
        scale = 1 / math.sqrt(blocks * len(widths))
        self.stem = nn.Conv2d(shape[2], widths[0], 3, padding=1)
        layers = []
        for stage, width in enumerate(widths):
            layers += [Block(width, scale) for _ in range(blocks)]
            following = widths[min(stage + 1, len(widths) - 1)]
            layers.append(nn.Conv2d(width, following, 3, stride=2, padding=1))
        self.body = nn.Sequential(*layers)
        side = shape[0] // 2 ** len(widths)
        self.head = nn.Linear(side * side * widths[-1], outputs)

    def forward(self, x):
        return self.head(torch.flatten(F.silu(self.body(self.stem(x))), 1))


class Decoder(nn.Module):
    def __init__(self, shape, widths, blocks, latent, channels_out):
        super().__init__()
        scale = 1 / math.sqrt(blocks * len(widths))
        self.side = shape[0] // 2 ** len(widths)
        self.width = widths[-1]
        self.stem = nn.Linear(latent, self.side * self.side * widths[-1])
        layers, previous = [], widths[-1]
        for stage in reversed(range(len(widths))):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(previous, widths[stage], 3, padding=1)]
            layers += [Block(widths[stage], scale) for _ in range(blocks)]
            previous = widths[stage]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(previous, channels_out, 3, padding=1)

    def forward(self, z):
        h = self.stem(z).view(-1, self.width, self.side, self.side)
        return self.head(F.silu(self.body(h)))


def mixture_log_prob(params, x, components):
    """log p(x) per example; params (B, P, H, W), x (B, C, H, W) in [0, 1]."""
    k, c = components, x.shape[1]
    logits, locs, scales, coefficients = torch.split(
        params, [k, k * c, k * c, k * (c * (c - 1) // 2)], dim=1)
    b, _, h, w = params.shape
    locs = locs.view(b, k, c, h, w)
    scales = 0.01 + 16.0 * F.softplus(scales.view(b, k, c, h, w) + math.log(math.e - 1))
    coefficients = torch.tanh(coefficients.view(b, k, -1, h, w))
    levels = torch.round(255.0 * x).unsqueeze(1)
    x = (levels / 255.0)
    means, pair = [], 0
    for channel in range(c):
        mean = locs[:, :, channel]
        for before in range(channel):
            mean = mean + coefficients[:, :, pair] * x[:, :, before]
            pair += 1
        means.append(mean)
    centred = levels - 255.0 * torch.stack(means, 2)
    lower, upper = (centred - 0.5) / scales, (centred + 0.5) / scales
    log_cdf, log_survival = -F.softplus(-upper), -F.softplus(lower)
    inside = log_cdf + log_survival + torch.log(-torch.expm1(-1.0 / scales))
    per_channel = torch.where(levels <= 0, log_cdf, torch.where(levels >= 255, log_survival,
                                                                   inside))
    per_pixel = torch.logsumexp(F.log_softmax(logits, 1) + per_channel.sum(2), dim=1)
    return per_pixel.flatten(1).sum(1)


def speed(x, batch, steps, repeats, widths, blocks, latent, components, bfloat16=False):
    """(images/s, parameters) of training steps on `x` (N, H, W, C). With
    `bfloat16`, the networks run under `torch.autocast` in bfloat16 (as Keras's
    mixed_bfloat16 policy runs its layers) and the loss in float32."""
    torch.manual_seed(0)
    shape = x.shape[1:]
    channels = shape[2]
    per_pixel = components * (1 + 2 * channels + channels * (channels - 1) // 2)
    encoder = Encoder(shape, widths, blocks, 2 * latent)
    decoder = Decoder(shape, widths, blocks, latent, per_pixel)
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    data = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def networks(images):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            stats = encoder(images).float()
            loc, raw = stats[:, :latent], stats[:, latent:]
            scale = 1e-4 + F.softplus(raw + math.log(math.e - 1))
            z = loc + scale * torch.randn_like(loc)
            return loc, scale, decoder(z).float()

    def step(images):
        loc, scale, params = networks(images)
        reconstruction = -mixture_log_prob(params, images, components)
        kl = 0.5 * (scale**2 + loc**2 - 1 - torch.log(scale**2)).sum(1)
        loss = (reconstruction + kl).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def epoch():
        for i in range(steps):
            step(data[i * batch:(i + 1) * batch])

    step(data[:batch])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return batch * steps / statistics.median(times), sum(p.numel() for p in parameters)
