"""The peer half of bench/tsne_bench.sh: scikit-learn's TSNE on the same
10,000 Fashion-MNIST test images (PCA to 50, n_jobs=2), timed, and the
trustworthiness (k = 10, against the raw pixels) of both maps: scikit-learn's
and edgetrain's (read from its CSV). Run with Debian's /usr/bin/python3
(python3-sklearn). Prints one JSON line."""
import csv
import gzip
import json
import sys
import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness


def idx_images(path):
    data = gzip.open(path).read()
    n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, h * w).astype(np.float32) / 255


def main():
    images, ours_csv, ours_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    x = idx_images(images)
    # edgetrain's coordinates, by image index (the source ends with #N).
    ours = np.zeros((len(x), 2), np.float32)
    seen = np.zeros(len(x), bool)
    with open(ours_csv) as f:
        for row in csv.DictReader(f):
            i = int(row["source"].rsplit("#", 1)[1])
            ours[i] = (float(row["x"]), float(row["y"]))
            seen[i] = True
    t0 = time.perf_counter()
    reduced = PCA(50, random_state=1).fit_transform(x)
    theirs = TSNE(2, perplexity=30, init="random", learning_rate="auto", n_jobs=2,
                  random_state=1).fit_transform(reduced)
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "samples": int(seen.sum()),
        "edgetrain_seconds": ours_seconds,
        "sklearn_seconds": round(seconds, 2),
        "speedup": round(seconds / ours_seconds, 2),
        "edgetrain_trustworthiness": round(float(trustworthiness(x[seen], ours[seen], n_neighbors=10)), 4),
        "sklearn_trustworthiness": round(float(trustworthiness(x, theirs, n_neighbors=10)), 4),
    }))


if __name__ == "__main__":
    main()
