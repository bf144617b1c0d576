/* MobileNetV1 and MobileNetV2 as the Keras applications define them
 * (keras/applications/mobilenet.py and mobilenet_v2.py, include_top=False),
 * with the same layer names, then the transfer head.
 *
 * Facts taken from those definitions, and checked against Keras 3.15 /
 * TensorFlow 2.21 (count_params() and output shapes, see tests/test_nn.c):
 *
 * V1: conv1 = Conv2D(int(32 alpha), 3x3, stride 2, same, no bias), BN, ReLU6;
 *   13 depthwise-separable blocks (pointwise filters int(f alpha) for f in
 *   64, 128, 128, 256, 256, 512 x6, 1024, 1024; stride 2 in blocks 2, 4, 6
 *   and 12). A strided block pads ((0, 1), (0, 1)) with ZeroPadding2D and
 *   runs a valid 3x3 depthwise conv, so an odd side n gives (n - 1) / 2, not
 *   "same"'s (n + 1) / 2. BatchNormalization has Keras' defaults: epsilon
 *   1e-3, momentum 0.99.
 * V2: Conv1 = Conv2D(_make_divisible(32 alpha, 8), 3x3, stride 2, same, no
 *   bias), BN, ReLU6; 17 inverted residual blocks (t, c, s): (1,16,1),
 *   (6,24,2), (6,24,1), (6,32,2), (6,32,1) x2, (6,64,2), (6,64,1) x3,
 *   (6,96,1) x3, (6,160,2), (6,160,1) x2, (6,320,1); each block: expand 1x1
 *   conv to t * in_channels (not in block 0), BN, ReLU6, depthwise 3x3 (a
 *   strided one after ZeroPadding2D(correct_pad) and valid, which equals
 *   "same" for a 3x3 window: pad (0, 1) on an even side, (1, 1) on an odd
 *   one), BN, ReLU6, project 1x1 conv to _make_divisible(int(c alpha), 8),
 *   BN (no activation), and Add with the block's input when the stride is 1
 *   and the channels match. Then Conv_1 1x1 to 1280 channels (alpha <= 1
 *   keeps 1280), BN, ReLU6 ("out_relu"). BN epsilon 1e-3, momentum 0.999.
 *
 * The head: GlobalAveragePooling2D, Dense(head_neurons) + ReLU when
 * head_neurons > 0, Dropout (when the rate is > 0), Dense(classes) + Softmax.
 */
#include "nn/nn_internal.h"

#include <stdio.h>

#define V1_BN_EPS 1e-3
#define V1_BN_MOMENTUM 0.99
#define V2_BN_EPS 1e-3
#define V2_BN_MOMENTUM 0.999

/* Keras' _make_divisible(v, divisor): the nearest multiple of divisor, at
 * least divisor, and not more than 10% below v. Python's int() truncates,
 * as the cast does for these non-negative values. */
static int make_divisible(double v, int divisor)
{
    int r = (int)(v + divisor / 2.0) / divisor * divisor;
    if (r < divisor)
        r = divisor;
    if (r < 0.9 * v)
        r += divisor;
    return r;
}

/* Conv -> BN -> ReLU6 with Keras' names: the caller's conv name, bn and relu
 * names come from the same printf-style prefix. */
static int conv_bn_relu6(et_model *m, int x, int filters, int k, int stride, const char *conv,
                         const char *bn, const char *relu, double eps, double momentum)
{
    x = et_nn_conv2d(m, x, filters, k, stride, ET_NN_SAME, false, "%s", conv);
    x = et_nn_batchnorm(m, x, eps, momentum, "%s", bn);
    return et_nn_unary(m, ET_NODE_RELU6, x, "%s", relu);
}

static int build_v1(et_model *m, int x, double alpha)
{
    static const struct {
        int filters, stride;
    } blocks[13] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},  {512, 2}, {512, 1},
                    {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
    x = conv_bn_relu6(m, x, (int)(32 * alpha), 3, 2, "conv1", "conv1_bn", "conv1_relu", V1_BN_EPS,
                      V1_BN_MOMENTUM);
    for (int i = 0; i < 13; i++) {
        int id = i + 1, s = blocks[i].stride;
        et_nn_pad pad = s == 1 ? ET_NN_SAME : et_nn_pad_explicit(0, 1, 0, 1);
        x = et_nn_depthwise(m, x, 1, 3, s, pad, false, "conv_dw_%d", id);
        x = et_nn_batchnorm(m, x, V1_BN_EPS, V1_BN_MOMENTUM, "conv_dw_%d_bn", id);
        x = et_nn_unary(m, ET_NODE_RELU6, x, "conv_dw_%d_relu", id);
        x = et_nn_conv2d(m, x, (int)(blocks[i].filters * alpha), 1, 1, ET_NN_SAME, false,
                         "conv_pw_%d", id);
        x = et_nn_batchnorm(m, x, V1_BN_EPS, V1_BN_MOMENTUM, "conv_pw_%d_bn", id);
        x = et_nn_unary(m, ET_NODE_RELU6, x, "conv_pw_%d_relu", id);
    }
    return x;
}

/* Keras' imagenet_utils.correct_pad for a 3x3 window: (0, 1) on an even
 * side, (1, 1) on an odd one. */
static et_nn_pad correct_pad(const et_model *m, int x)
{
    const et_shape *s = &m->nodes[x].info.out;
    return et_nn_pad_explicit(s->h % 2, 1, s->w % 2, 1);
}

static int inverted_res_block(et_model *m, int x, int expansion, int stride, double alpha,
                              int filters, int block_id)
{
    if (x < 0)
        return -1;
    int in_c = m->nodes[x].info.out.c;
    int out_c = make_divisible((int)(filters * alpha), 8);
    char prefix[32];
    if (block_id)
        snprintf(prefix, sizeof prefix, "block_%d_", block_id);
    else
        snprintf(prefix, sizeof prefix, "expanded_conv_");
    int inputs = x;
    if (block_id) {
        x = et_nn_conv2d(m, x, expansion * in_c, 1, 1, ET_NN_SAME, false, "%sexpand", prefix);
        x = et_nn_batchnorm(m, x, V2_BN_EPS, V2_BN_MOMENTUM, "%sexpand_BN", prefix);
        x = et_nn_unary(m, ET_NODE_RELU6, x, "%sexpand_relu", prefix);
    }
    et_nn_pad pad = ET_NN_SAME;
    if (stride == 2 && x >= 0)
        pad = correct_pad(m, x);
    x = et_nn_depthwise(m, x, 1, 3, stride, pad, false, "%sdepthwise", prefix);
    x = et_nn_batchnorm(m, x, V2_BN_EPS, V2_BN_MOMENTUM, "%sdepthwise_BN", prefix);
    x = et_nn_unary(m, ET_NODE_RELU6, x, "%sdepthwise_relu", prefix);
    x = et_nn_conv2d(m, x, out_c, 1, 1, ET_NN_SAME, false, "%sproject", prefix);
    x = et_nn_batchnorm(m, x, V2_BN_EPS, V2_BN_MOMENTUM, "%sproject_BN", prefix);
    if (in_c == out_c && stride == 1)
        x = et_nn_add(m, inputs, x, "%sadd", prefix);
    return x;
}

static int build_v2(et_model *m, int x, double alpha)
{
    static const struct {
        int t, c, s;
    } blocks[17] = {{1, 16, 1}, {6, 24, 2},  {6, 24, 1},  {6, 32, 2},  {6, 32, 1}, {6, 32, 1},
                    {6, 64, 2}, {6, 64, 1},  {6, 64, 1},  {6, 64, 1},  {6, 96, 1}, {6, 96, 1},
                    {6, 96, 1}, {6, 160, 2}, {6, 160, 1}, {6, 160, 1}, {6, 320, 1}};
    x = conv_bn_relu6(m, x, make_divisible(32 * alpha, 8), 3, 2, "Conv1", "bn_Conv1", "Conv1_relu",
                      V2_BN_EPS, V2_BN_MOMENTUM);
    for (int i = 0; i < 17; i++)
        x = inverted_res_block(m, x, blocks[i].t, blocks[i].s, alpha, blocks[i].c, i);
    int last = alpha > 1.0 ? make_divisible(1280 * alpha, 8) : 1280;
    return conv_bn_relu6(m, x, last, 1, 1, "Conv_1", "Conv_1_bn", "out_relu", V2_BN_EPS,
                         V2_BN_MOMENTUM);
}

et_status et_nn_build_mobilenet(const et_impulse *imp, int classes, int channels, et_model **out,
                                et_error *err)
{
    bool v1 = imp->model == ET_MODEL_MOBILENETV1;
    const char *arch = v1 ? "mobilenetv1" : "mobilenetv2";
    double lo = v1 ? 0.1 : 0.05;
    if (!(imp->alpha >= lo - 1e-9 && imp->alpha <= 1.0 + 1e-9))
        return et_error_set(err, ET_EINVAL, "learning.alpha=%g: %s takes alpha %g..1.0", imp->alpha,
                            arch, lo);
    if (imp->width < ET_TRANSFER_INPUT_MIN || imp->height < ET_TRANSFER_INPUT_MIN ||
        imp->width > ET_TRANSFER_INPUT_MAX || imp->height > ET_TRANSFER_INPUT_MAX)
        return et_error_set(err, ET_EINVAL, "input %dx%d: %s takes %d..%d px", imp->width,
                            imp->height, arch, ET_TRANSFER_INPUT_MIN, ET_TRANSFER_INPUT_MAX);
    if (imp->head_neurons < 0 || imp->head_neurons > 4096)
        return et_error_set(err, ET_EINVAL, "learning.head_neurons=%d is outside 0..4096",
                            imp->head_neurons);

    et_model *m = et_nn_begin(imp->model, classes, err);
    if (!m)
        return ET_ENOMEM;
    m->alpha = imp->alpha;
    int x = et_nn_input(m, imp->height, imp->width, channels, "input");
    x = v1 ? build_v1(m, x, imp->alpha) : build_v2(m, x, imp->alpha);
    m->backbone_nodes = x + 1;

    x = et_nn_unary(m, ET_NODE_GLOBAL_AVGPOOL, x, "global_average_pooling2d");
    const char *classifier = "dense";
    if (imp->head_neurons > 0) {
        x = et_nn_dense(m, x, imp->head_neurons, true, "dense");
        x = et_nn_unary(m, ET_NODE_RELU, x, "dense_relu");
        classifier = "dense_1";
    }
    if (imp->dropout > 0)
        x = et_nn_dropout(m, x, imp->dropout, "dropout");
    x = et_nn_dense(m, x, classes, true, "%s", classifier);
    et_nn_unary(m, ET_NODE_SOFTMAX, x, "%s_softmax", classifier);
    return et_nn_finish(m, out);
}
