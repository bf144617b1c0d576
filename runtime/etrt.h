/*
 * etrt: the edgetrain runtime, the inference engine a deployed model runs on.
 * C99, libc only, no malloc, no globals. The same code evaluates int8 models
 * inside edgetrain, so the accuracy the tool reports is what the device gets.
 *
 *     // model_etrt: the bytes of a .etrt file (edgetrain writes them with each
 *     // trained model), 4-byte aligned, e.g. a const array in flash.
 *     etrt_model m;
 *     int rc = etrt_model_init(&m, model_etrt, sizeof model_etrt);
 *     if (rc < 0) { printf("bad model: %s (op %d)\n", etrt_strerror(rc), m.error_op); ... }
 *     static uint8_t arena[40 * 1024] __attribute__((aligned(16)));
 *     if (etrt_arena_size(&m) > sizeof arena) ...          // too small
 *     etrt_tensor_info in = etrt_input_info(&m);
 *     int8_t *x = etrt_input(&m, arena);                   // in.h * in.w * in.c values
 *     ... fill x: etrt_quantize_s8(n, pixels, in.scale, in.zero_point, x) ...
 *     etrt_invoke(&m, arena);
 *     const int8_t *scores = etrt_output(&m, arena);       // one per class
 *
 * A model is a plan computed by edgetrain before deployment: the ops in order,
 * and every tensor (activations and the kernels' scratch) at a fixed offset in
 * one arena. The planner reuses memory between tensors whose lifetimes do not
 * overlap, runs reshapes and adds in place, fuses a conv with the max pool
 * after it (the conv's output then never exists in full), and gives scratch
 * memory only for the op that uses it; etrt_arena_size() is therefore the model's peak RAM
 * for activations, the input and output included.
 *
 * Model file (.etrt), little-endian, every record 4-byte aligned:
 *   etrt_header                        at 0
 *   etrt_tensor_rec[n_tensors]         at tensors_offset
 *   etrt_op_rec[n_ops]                 at ops_offset
 *   constant data                      weights (int8 or float32), biases (int32
 *                                      or float32), per-channel multipliers and
 *                                      shifts (int32), each 4-byte aligned,
 *                                      referenced by byte offsets from the start
 * etrt_model_init checks every offset, size, shape and parameter once;
 * etrt_invoke then runs without checks (TFLite's prepare/eval split).
 */
#ifndef ETRT_H
#define ETRT_H

#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ETRT_MAGIC "ETRT"
#define ETRT_FORMAT_VERSION 1u

/* Errors: negative codes, etrt_strerror names them. */
enum {
    ETRT_OK = 0,
    ETRT_EMAGIC = -1,   /* not an .etrt model (bad magic) */
    ETRT_EVERSION = -2, /* a newer format version than this runtime reads */
    ETRT_ETRUNC = -3,   /* the model is shorter than its header says */
    ETRT_EALIGN = -4,   /* the model bytes are not 4-byte aligned */
    ETRT_ERANGE = -5,   /* an offset or size points outside the model or arena */
    ETRT_ESHAPE = -6,   /* an op's tensor shapes do not fit together */
    ETRT_EPARAM = -7,   /* a bad parameter (stride, padding, clamp, shift, zero point) */
    ETRT_EOP = -8,      /* an unknown op kind or tensor type */
};

/* "ok", "not an .etrt model", ...; never NULL. */
const char *etrt_strerror(int code);

typedef enum etrt_type {
    ETRT_INT8 = 1,
    ETRT_FLOAT32 = 2,
} etrt_type;

typedef enum etrt_op_kind {
    ETRT_OP_CONV2D = 1,
    ETRT_OP_DEPTHWISE_CONV2D = 2,
    ETRT_OP_FULLY_CONNECTED = 3,
    ETRT_OP_MAX_POOL = 4,
    ETRT_OP_AVG_POOL = 5, /* a global average pool is an average pool over the whole input */
    ETRT_OP_ADD = 6,
    ETRT_OP_SOFTMAX = 7,
    ETRT_OP_RESHAPE = 8, /* same values, new shape (flatten); in place when planned so */
    ETRT_OP_PAD = 9,
    ETRT_OP_CONV2D_MAXPOOL = 10, /* a conv2d whose output only a max pool reads, fused */
} etrt_op_kind;
#define ETRT_OP_KIND_MAX 10

typedef struct etrt_header {
    char magic[4];       /* "ETRT" */
    uint32_t version;    /* ETRT_FORMAT_VERSION */
    uint32_t total_size; /* bytes of the whole model */
    uint32_t type;       /* etrt_type of the activations: the int8 or the float32 model */
    uint32_t arena_size; /* bytes of arena etrt_invoke needs */
    uint32_t n_tensors, tensors_offset;
    uint32_t n_ops, ops_offset;
    int32_t input, output; /* tensor indices */
    uint32_t reserved[5];  /* 0 */
} etrt_header;

/* One activation tensor, batch 1: h x w x c values of `type` at `offset` in
 * the arena. For int8, real = scale * (q - zero_point). */
typedef struct etrt_tensor_rec {
    uint32_t type;
    int32_t h, w, c;
    uint32_t offset;
    float scale;        /* int8 only; 0 for float32 */
    int32_t zero_point; /* int8 only */
    uint32_t reserved;
} etrt_tensor_rec;

/* One op. Offsets into the model (weights, bias, multiplier, shift) are 0
 * when absent; scratch lies in the arena. Which fields an op reads:
 *   conv2d, depthwise: window, depth_multiplier (depthwise), act, weights,
 *     bias, and for int8 multiplier + shift ([out_c] int32 each);
 *   fully_connected: act, weights [out][in], bias, int8: multiplier + shift
 *     ([out] when per_channel, else [1]);
 *   max_pool, avg_pool: window, act;
 *   add: act; int8: q[] = left_shift, input1 multiplier, input1 shift,
 *     input2 multiplier, input2 shift, output multiplier, output shift;
 *   softmax: int8: q[] = input multiplier, input left shift, diff_min;
 *   reshape: nothing;
 *   pad: q[] = top, bottom, left, right (the pad value is the zero point);
 *   conv2d_maxpool: the conv2d's fields (its window, act, weights, ...), and
 *     q[] = the pool's k_h, k_w, stride_h, stride_w, pad_top, pad_left, then
 *     the height and width the conv's output would have; the output tensor
 *     is the pool's, with the conv's quantization.
 * act_min/act_max clamp int8 outputs; act_min_f/act_max_f float outputs. */
typedef struct etrt_op_rec {
    uint32_t kind;
    int32_t input[2]; /* tensor indices; input[1] = -1 unless add */
    int32_t output;
    uint32_t weights, bias, multiplier, shift;
    uint32_t scratch_offset, scratch_size;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t depth_multiplier;
    int32_t per_channel;
    int32_t act_min, act_max;
    float act_min_f, act_max_f;
    int32_t q[8];
} etrt_op_rec;

/* A model checked by etrt_model_init. Points into the caller's bytes, which
 * must stay valid and unchanged while the model is used. */
typedef struct etrt_model {
    const uint8_t *base;
    const etrt_header *header;
    const etrt_tensor_rec *tensors;
    const etrt_op_rec *ops;
    int error_op; /* the op (or -1) a failed etrt_model_init complained about */
} etrt_model;

/* What a tensor looks like, for the caller filling the input or reading the output. */
typedef struct etrt_tensor_info {
    etrt_type type;
    int32_t h, w, c;
    size_t bytes;
    float scale;
    int32_t zero_point;
} etrt_tensor_info;

/* Checks the model bytes (size bytes at blob, 4-byte aligned) and fills m.
 * Returns ETRT_OK or a negative code; m->error_op then names the op. */
int etrt_model_init(etrt_model *m, const void *blob, size_t size);

/* Bytes of arena etrt_invoke needs (aligned to 16 by the planner). */
size_t etrt_arena_size(const etrt_model *m);

etrt_tensor_info etrt_input_info(const etrt_model *m);
etrt_tensor_info etrt_output_info(const etrt_model *m);

/* Where the input and output tensors live in an arena. */
void *etrt_input(const etrt_model *m, void *arena);
const void *etrt_output(const etrt_model *m, const void *arena);

/* Runs every op. arena: etrt_arena_size(m) bytes, 4-byte aligned, with the
 * input already written; the output is read from it afterwards. Nothing else
 * is touched; several arenas let several threads run one model. */
void etrt_invoke(const etrt_model *m, void *arena);

#ifdef __cplusplus
}
#endif
#endif
