"""TensorFlow/Keras peer for bench/train_throughput.sh: samples/s of
forward + backward + Adam step (train_on_batch) at a fixed batch size on random
inputs, for the same two models as bench/train_throughput.c, built from
keras.applications (MobileNetV2 alpha 0.35, include_top=False, then the
transfer head) and the default conv net. Run with the pip Python that has
tensorflow (pip install tensorflow-cpu). Prints one JSON line."""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def conv_net(classes):
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(classes, activation="softmax"),
    ])


def mobilenet_v2(classes):
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 1), alpha=0.35,
                                          include_top=False, weights=None)
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.layers.Dense(16, activation="relu")(x)
    x = keras.layers.Dropout(0.1)(x)
    return keras.Model(base.input, keras.layers.Dense(classes, activation="softmax")(x))


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "conv"
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    threads = os.cpu_count()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(1)
    model = conv_net(10) if which == "conv" else mobilenet_v2(10)
    side = 28 if which == "conv" else 96
    model.compile(optimizer=keras.optimizers.Adam(0.0005),
                  loss="sparse_categorical_crossentropy")
    x = np.random.rand(batch, side, side, 1).astype("float32")
    y = np.arange(batch) % 10
    warmup = 3
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - t0
    print(json.dumps({"peer": "tensorflow " + tf.__version__, "model": which, "batch": batch,
                      "steps": steps, "threads": threads,
                      "samples_per_s": round(batch * steps / seconds, 1)}))


if __name__ == "__main__":
    main()
