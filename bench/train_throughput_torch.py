"""PyTorch peer for bench/train_throughput.sh: samples/s of forward + backward
+ Adam step at a fixed batch size on random inputs, for the same two models as
bench/train_throughput.c (the default conv net on 28x28x1 and MobileNetV2
alpha 0.35 on 96x96x1 with a 16-neuron head, 10 classes). Run it with
Debian's /usr/bin/python3 (python3-torch). Prints one JSON line."""
import json
import os
import sys
import time

import torch
from torch import nn


def make_divisible(v, divisor=8):
    # Keras' _make_divisible: round to a multiple of divisor, never below 90%.
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn(cin, cout, k, stride, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=1e-3, momentum=0.001)]
    if act:
        layers.append(nn.ReLU6())
    return layers


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        layers = []
        if expansion != 1:
            layers += conv_bn(cin, hidden, 1, 1)
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += conv_bn(hidden, cout, 1, 1, act=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def mobilenet_v2(alpha, channels, classes, head=16, dropout=0.1):
    cin = make_divisible(32 * alpha)
    layers = conv_bn(channels, cin, 3, 2)
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    for t, c, n, s in settings:
        cout = make_divisible(c * alpha)
        for i in range(n):
            layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
            cin = cout
    layers += conv_bn(cin, 1280, 1, 1)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1280, head), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(head, classes))


def conv_net(classes):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(7 * 7 * 16, classes))


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "conv"
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    torch.manual_seed(1)
    torch.set_num_threads(os.cpu_count())
    if which == "conv":
        model, side = conv_net(10), 28
    else:
        model, side = mobilenet_v2(0.35, 1, 10), 96
    x = torch.rand(batch, 1, side, side)
    y = torch.arange(batch) % 10
    opt = torch.optim.Adam(model.parameters(), lr=0.0005, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    warmup = 3
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"peer": "pytorch " + torch.__version__, "model": which, "batch": batch,
                      "steps": steps, "threads": torch.get_num_threads(),
                      "samples_per_s": round(batch * steps / seconds, 1)}))


if __name__ == "__main__":
    main()
