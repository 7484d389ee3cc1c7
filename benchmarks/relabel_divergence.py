"""Why a relabeled set can train a model without normalization into collapse: the evaluation's own training loop
(train.train_model with the set's teacher), epoch by epoch, with relabel_loss as the protocol has it (T^2 x soft CE
at the teacher's T, Hinton's scaling) or without the T^2 (SRe2L/RDED's KLDiv(batchmean), which those papers pair
with AdamW lr 1e-3, not our SGD lr 0.01). After each epoch it prints the relabel loss on the un-augmented set, how
many images the model assigns to each class, and the spread of its logits: a diverging run shows the logits
exploding and then every image going to one class, until the loss is no longer finite (where it stops). The replay
keeps the lr constant, so it is the evaluation's run only up to its lr decay at half the epochs (150 of 300).

    python benchmarks/relabel_divergence.py runs/fmnist-gpu-xarch/cells/sre2l-6c73660071/artifact --model alexnet
    python benchmarks/relabel_divergence.py ... --no-t2
"""

import argparse
import time

import torch

from ltdistill import models, train
from ltdistill.data.longtail import load_longtail
from ltdistill.evaluate.protocol import load_teacher
from ltdistill.synthetic import SyntheticSet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", help="a SyntheticSet made with a relabeling teacher (SRe2L, uni-level)")
    p.add_argument("--model", default="alexnet")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--no-t2", action="store_true", help="drop the T^2 factor of the relabel loss")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    synthetic = SyntheticSet.load(args.artifact)
    meta = synthetic.meta
    data = load_longtail(meta["dataset"], meta.get("imbalance_factor"), data_dir=args.data_dir)
    teacher, temperature = load_teacher(synthetic, data, "cpu")
    protocol_loss = train.relabel_loss
    if args.no_t2:  # the loop calls train.relabel_loss by name; this swaps the scaling, nothing else
        train.relabel_loss = lambda logits, target, t: protocol_loss(logits, target, t) / t ** 2
    torch.manual_seed(0)  # as evaluate's first run: seed 0 just before the model is made
    model = models.create(args.model, channels=data.channels, num_classes=data.num_classes, im_size=data.im_size)
    config = train.TrainConfig(epochs=1, lr=args.lr, lr_decay_at_half=False, temperature=temperature)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(0)
    print(f"{args.model} on {args.artifact}: relabel loss {'without' if args.no_t2 else 'with'} T^2, T={temperature:g},"
          f" SGD lr {args.lr}")
    for epoch in range(args.epochs):
        start = time.perf_counter()
        try:
            train.train_model(model, synthetic.images, synthetic.labels, config, generator=generator,
                              teacher=teacher, optimizer=optimizer)
        except train.TrainingDiverged:
            print(f"epoch {epoch + 1:3d}  diverged: the training loss is no longer finite")
            return
        with torch.no_grad():
            model.eval()
            logits = model(synthetic.images)
            model.train()
            loss = protocol_loss(logits, teacher(synthetic.images), temperature)
        counts = torch.bincount(logits.argmax(1), minlength=data.num_classes).tolist()
        print(f"epoch {epoch + 1:3d}  relabel loss (T^2 scale) {loss.item():9.3f}  logit std {logits.std().item():8.2f}"
              f"  images per predicted class {counts}  {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
