"""The peer half of bench/tsne_bench.sh: scikit-learn's TSNE on the same
10,000 Fashion-MNIST test images (PCA to 50, n_jobs=2), timed, and the
trustworthiness (k = 10, against the raw pixels) of both maps: scikit-learn's
and edgetrain's (read from its CSV). Run with Debian's /usr/bin/python3
(python3-sklearn). Prints one JSON line.

Mode "all": edgetrain mapped all 70,000 images; only its time and the
trustworthiness of the test images' places in that map are reported (the
measure over all 70,000 needs a 70,000^2 distance matrix)."""
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
    mode = sys.argv[4] if len(sys.argv) > 4 else "test"
    x = idx_images(images)
    test_file = images.rsplit("/", 1)[-1]
    # edgetrain's coordinates of the test images, by image index (the source
    # is the IDX file's path, then #N).
    ours = np.zeros((len(x), 2), np.float32)
    seen = np.zeros(len(x), bool)
    rows = 0
    with open(ours_csv) as f:
        for row in csv.DictReader(f):
            rows += 1
            path, index = row["source"].rsplit("#", 1)
            if path.endswith(test_file):
                ours[int(index)] = (float(row["x"]), float(row["y"]))
                seen[int(index)] = True
    result = {
        "samples": rows,
        "edgetrain_seconds": ours_seconds,
        "edgetrain_trustworthiness": round(float(trustworthiness(x[seen], ours[seen], n_neighbors=10)), 4),
    }
    if mode == "test":
        t0 = time.perf_counter()
        reduced = PCA(50, random_state=1).fit_transform(x)
        theirs = TSNE(2, perplexity=30, init="random", learning_rate="auto", n_jobs=2,
                      random_state=1).fit_transform(reduced)
        seconds = time.perf_counter() - t0
        result["sklearn_seconds"] = round(seconds, 2)
        result["speedup"] = round(seconds / ours_seconds, 2)
        result["sklearn_trustworthiness"] = round(float(trustworthiness(x, theirs, n_neighbors=10)), 4)
    else:
        result["test_images_in_map"] = int(seen.sum())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
