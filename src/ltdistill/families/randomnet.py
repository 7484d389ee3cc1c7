"""What the random-network matching methods (DC/DSA, DM) share: a fresh randomly initialized network per
iteration, class-wise real batches, siamese DSA on a (real, synthetic) pair, the synthetic images as the only
learnable tensor, and the checkpointed outer loop of loop.py.

Both methods are class-balanced by construction: every iteration matches every class once, with a real batch of
`batch_real` images of that class (all of a tail class that has fewer), so the long tail only shows in how many
distinct real images a tail class can offer. Randomness all flows through one torch.Generator (network weights
included: the global RNG is reseeded from it before each network is built), so a resumed run repeats an
uninterrupted one on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ltdistill import distributed, models
from ltdistill.data.augment import DSA, image_shape
from ltdistill.engine.loop import Learnable, SynthesisState, run_synthesis
from ltdistill.engine.method import Method, with_meta
from ltdistill.families.init import real_per_class
from ltdistill.params import Count, ModelName, NonNegative, Rate
from ltdistill.synthetic import SyntheticSet


@dataclass(frozen=True)
class RandomNetConfig:
    iterations: NonNegative = 1000
    lr_img: Rate = 0.1  # SGD (momentum 0.5) lr of the pixels
    batch_real: Count = 256  # real images of one class per matching step
    # "real": random real images of the class (cycled for a short tail class) | "noise": N(0, 1)
    init: Literal["real", "noise"] = "real"
    dsa: bool = True  # siamese DSA on real and synthetic batches (DSA, Zhao & Bilen 2021)
    # "batch": one draw for both whole batches, as the official DiffAugment with a seed (DatasetCondensation
    # utils.py:535-631, Siamese: theta[:] = theta[0]); "per_image": real and synthetic image i share a draw
    dsa_siamese: Literal["batch", "per_image"] = "batch"
    model: ModelName = "convnet"  # the random network's architecture
    width: Count = 128  # ConvNet width (the cpu protocol sets 32)
    depth: Count = 3  # ConvNet depth (the cpu protocol sets 2 for 16x16 images)
    checkpoint_every: Count = 50
    compile: bool = False  # DM's embeddings, DC's network training and its matching's real pass through
    #                        torch.compile, its synthetic pass through the unroll ops (the same set to float
    #                        tolerance; pays off over thousands of iterations)


class Context:
    """One run's fixed pieces, handed to a method's step."""

    def __init__(self, method: RandomNetMethod, data, ipc: int, labels: torch.Tensor, generator, device: str):
        cfg = method.config
        self.cfg, self.data, self.ipc, self.labels = cfg, data, ipc, labels
        self.generator, self.device = generator, device
        self.dsa = DSA() if cfg.dsa else None
        self.pools = [data.indices_of(c) for c in range(data.num_classes)]

    def network(self) -> models.Classifier:
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))
        net = models.create(self.cfg.model, channels=self.data.channels, num_classes=self.data.num_classes,
                            im_size=self.data.im_size,
                            **models.options_for(self.cfg.model, width=self.cfg.width, depth=self.cfg.depth))
        return net.to(self.device).train()

    def real(self, c: int, n: int) -> torch.Tensor:
        pool = self.pools[c]
        pick = pool[torch.randperm(len(pool), generator=self.generator)[:n]]
        return self.data.train_x[pick].to(self.device)

    def rows(self, c: int) -> slice:
        return slice(c * self.ipc, (c + 1) * self.ipc)

    def mine(self, c: int) -> bool:
        """Whether this process computes class c: all of them in one process; under torchrun, class c on rank
        c % size (every rank still draws every class's images and augmentation, so the random streams stay one)."""
        here = distributed.joined()
        return c % here.size == here.rank

    def augment_pair(self, real: torch.Tensor, syn: torch.Tensor, apply: bool = True):
        """The same DSA draw on both batches (sampled for the larger one; the smaller uses its first rows);
        `apply=False` only draws it (a class another rank computes)."""
        if self.dsa is None:
            return real, syn
        n = max(len(real), len(syn))
        if self.cfg.dsa_siamese == "batch":  # one transform for every real and synthetic image (official)
            params = self.dsa.one_for_all(self.dsa.sample(1, image_shape(real), self.generator, self.device), n)
        else:
            params = self.dsa.sample(n, image_shape(real), self.generator, self.device)
        if not apply:
            return real, syn
        return self.dsa.apply(real, params), self.dsa.apply(syn, params)


class RandomNetMethod(Method):
    """Base of DC and DM: subclasses give `make_step(ctx, state) -> step(iteration) -> loss`."""

    Config = RandomNetConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        cfg = self.config
        generator = torch.Generator().manual_seed(seed)
        images, labels, distinct = real_per_class(data, ipc, generator)
        if cfg.init == "noise":
            images = torch.randn(images.shape, generator=generator)
        state = SynthesisState({"images": Learnable(images.to(device), cfg.lr_img, 0.5)}, generator)
        ctx = Context(self, data, ipc, labels.to(device), generator, device)
        settings = {"ipc": ipc, "seed": seed, "data": data.describe()}
        def make_set():
            return SyntheticSet(state["images"].detach().cpu(), labels,
                                meta={"distinct_per_class": distinct if cfg.init == "real" else None})

        meta = run_synthesis(self, state, self.make_step(ctx, state), settings=settings, workdir=workdir,
                             progress=progress, make_set=make_set)
        return with_meta(make_set(), meta)

    def make_step(self, ctx: Context, state: SynthesisState):
        raise NotImplementedError
