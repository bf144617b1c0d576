"""PyTorch peer for MobileNetV2 from scratch (docs/BENCHMARKS.md, "MobileNetV2
from scratch"): MobileNetV2 alpha 0.35 with a 16-neuron head (the architecture
of train_throughput_torch.py) on Fashion-MNIST resized to SIDE px, Adam with
cosine decay, batch 32, a seeded 12,000-image validation split; prints each
epoch's training and validation loss and accuracy, to compare the learning
curve with edgetrain's. Run with Debian's python3-torch:
    /usr/bin/python3 bench/mobilenet_scratch_torch.py SIDE EPOCHS LR"""
import gzip, sys, time, math, os
import numpy as np, torch
from torch import nn
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput_torch import mobilenet_v2
side = int(sys.argv[1]); epochs = int(sys.argv[2]); lr = float(sys.argv[3])
def idx(p):
    with gzip.open(p) as f: b = f.read()
    return np.frombuffer(b, np.uint8, offset=16 if b[3] == 3 else 8)
d = "/usr/share/datasets/fashion-mnist/"
x = idx(d + "train-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28).astype(np.float32) / 255
y = idx(d + "train-labels-idx1-ubyte.gz").astype(np.int64)
torch.manual_seed(1); torch.set_num_threads(os.cpu_count())
x = torch.from_numpy(x); y = torch.from_numpy(y)
if side != 28: x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
perm = torch.randperm(len(y)); xv, yv = x[perm[:12000]], y[perm[:12000]]; xt, yt = x[perm[12000:]], y[perm[12000:]]
m = mobilenet_v2(0.35, 1, 10)
opt = torch.optim.Adam(m.parameters(), lr=lr, eps=1e-7)
steps = epochs * (len(yt) // 32); step = 0
for ep in range(epochs):
    m.train(); p = torch.randperm(len(yt)); tl = tc = n = 0; t0 = time.time()
    for i in range(0, len(yt) - 31, 32):
        for g in opt.param_groups: g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        b = p[i:i + 32]; out = m(xt[b]); loss = F.cross_entropy(out, yt[b])
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
        tl += loss.item() * 32; tc += (out.argmax(1) == yt[b]).sum().item(); n += 32
    m.eval()
    with torch.no_grad():
        o = torch.cat([m(xv[i:i + 256]) for i in range(0, 12000, 256)])
        vl = F.cross_entropy(o, yv).item(); va = (o.argmax(1) == yv).float().mean().item()
    print(f"epoch {ep+1} loss {tl/n:.4f} acc {tc/n*100:.1f}% val_loss {vl:.4f} val_acc {va*100:.1f}% {time.time()-t0:.0f}s", flush=True)
