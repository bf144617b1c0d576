/* Time of one etrt_invoke of an .etrt model, single thread, on seeded
 * random inputs, for comparing two builds of the runtime (no peer: the
 * runtime against TensorFlow Lite is bench/int8_vs_tflite.sh):
 *
 *     bench_etrt_invoke MODEL.etrt [INVOKES]
 *
 * Prints milliseconds per invoke and a hash of every output, which two
 * builds that compute the same integers print alike. */
#include "etrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_etrt_invoke MODEL.etrt [INVOKES]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 1;
    }
    void *bytes = aligned_alloc(16, ((size_t)n + 15) & ~(size_t)15);
    size_t got = bytes ? fread(bytes, 1, (size_t)n, f) : 0;
    fclose(f);
    etrt_model m;
    int rc = got == (size_t)n ? etrt_model_init(&m, bytes, (size_t)n) : ETRT_ETRUNC;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], etrt_strerror(rc));
        return 1;
    }
    void *arena = aligned_alloc(16, (etrt_arena_size(&m) + 15) & ~(size_t)15);
    int invokes = argc > 2 ? atoi(argv[2]) : 50;
    etrt_tensor_info in = etrt_input_info(&m), out = etrt_output_info(&m);
    uint8_t *x = etrt_input(&m, arena);
    uint32_t s = 1;
    uint64_t hash = 1469598103934665603ull;
    double t0 = now_s();
    for (int r = 0; r < invokes; r++) {
        for (size_t i = 0; i < in.bytes; i++) {
            s = s * 1103515245u + 12345u;
            x[i] = (uint8_t)(s >> 16);
        }
        etrt_invoke(&m, arena);
        const uint8_t *y = etrt_output(&m, arena);
        for (size_t i = 0; i < out.bytes; i++)
            hash = (hash ^ y[i]) * 1099511628211ull;
    }
    double t = now_s() - t0;
    printf("{\"model\": \"%s\", \"invokes\": %d, \"ms_per_invoke\": %.3f, \"output_hash\": "
           "\"%016llx\"}\n",
           argv[1], invokes, t / invokes * 1e3, (unsigned long long)hash);
    free(arena);
    free(bytes);
    return 0;
}
