/* Training throughput of edgetrain: samples/s of forward + backward + Adam
 * step at a fixed batch size, on random inputs, for the two models of
 * DESIGN.md's performance rule:
 *   conv   the default conv net on 28x28x1, 10 classes
 *   mnv2   MobileNetV2 alpha 0.35 on 96x96x1, head 16, 10 classes
 * Prints one JSON line. Run by bench/train_throughput.sh next to PyTorch. */
#include "edgetrain/edgetrain.h"
#include "edgetrain/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "conv";
    int batch = argc > 2 ? atoi(argv[2]) : 32;
    int steps = argc > 3 ? atoi(argv[3]) : 20;
    et_impulse imp = et_impulse_defaults();
    imp.color = ET_COLOR_GRAYSCALE;
    et_error err = {0};
    if (!strcmp(which, "conv")) {
        imp.width = imp.height = 28;
    } else if (!strcmp(which, "mnv2")) {
        imp.width = imp.height = 96;
        if (et_impulse_set(&imp, "learning.model=mobilenetv2", &err) < 0)
            return fprintf(stderr, "%s\n", err.msg), 1;
    } else {
        fprintf(stderr, "usage: train_throughput conv|mnv2 [batch] [steps]\n");
        return 2;
    }
    et_model *m = NULL;
    et_net *net = NULL;
    if (et_model_create_from_impulse(&imp, 10, 1, &m, &err) < 0 ||
        et_net_create(m, batch, &net, &err) < 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    et_net_init(net, 1);
    size_t row = (size_t)imp.width * imp.height;
    float *x = malloc((size_t)batch * row * sizeof *x);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)batch * row; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    for (int i = 0; i < batch; i++)
        labels[i] = i % 10;
    et_optimizer adam = et_optimizer_adam();
    double t0 = 0;
    const int warmup = 3;
    for (int step = 0; step < warmup + steps; step++) {
        if (step == warmup)
            t0 = et_now_s();
        double loss = 0;
        if (et_net_forward(net, x, batch, true, (uint64_t)step, &err) < 0 ||
            et_net_backward(net, labels, 0, NULL, &loss, &err) < 0)
            return fprintf(stderr, "%s\n", err.msg), 1;
        et_net_step(net, &adam, 0.0005);
    }
    double seconds = et_now_s() - t0;
    printf("{\"peer\": \"edgetrain\", \"model\": \"%s\", \"batch\": %d, \"steps\": %d, "
           "\"kernels\": \"%s\", \"samples_per_s\": %.1f}\n",
           which, batch, steps, et_kernel_set_name(et_net_kernels(net)),
           (double)batch * steps / seconds);
    free(x);
    free(labels);
    et_net_destroy(net);
    et_model_destroy(m);
    return 0;
}
