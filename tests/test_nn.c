/* nn: the model graph. Shapes, parameter counts and MACs of the conv net and
 * of MobileNetV1/V2 against Keras, the parameter buffer's layout, errors,
 * the summaries and the `model summary` command.
 *
 * Where the Keras figures come from: TensorFlow 2.21.0 / Keras 3.15.1
 * (pip tensorflow-cpu), e.g.
 *   m = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35,
 *                                      include_top=False, weights=None)
 *   m.count_params(); sum of m.trainable_weights / m.non_trainable_weights sizes;
 *   m.get_layer("block_1_depthwise").output.shape; [l.name for l in m.layers if Add]
 * MACs were summed over that model's layers with the rule in nn.h (Conv2D
 * out_h*out_w*out_c*k_h*k_w*in_c, DepthwiseConv2D out_h*out_w*out_c*k_h*k_w,
 * Dense in*out), reading every shape from Keras.
 */
#include "testutil.h"

#include "edgetrain/nn.h"
#include "nn/nn_internal.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static et_impulse mobilenet(et_model_kind kind, double alpha, int h, int w)
{
    et_impulse imp = et_impulse_defaults();
    imp.model = kind;
    imp.alpha = alpha;
    imp.height = h;
    imp.width = w;
    imp.head_neurons = 16;
    imp.dropout = 0.1;
    return imp;
}

static et_model *build(const et_impulse *imp, int classes, int channels)
{
    et_model *m = NULL;
    et_error err = {0};
    cr_assert_eq(et_model_create_from_impulse(imp, classes, channels, &m, &err), ET_OK, "%s",
                 err.msg);
    cr_assert_not_null(m);
    return m;
}

static const et_layer_info *layer(const et_model *m, const char *name)
{
    int i = et_model_find(m, name);
    cr_assert_geq(i, 0, "no layer '%s'", name);
    return et_model_layer(m, i);
}

static void assert_shape(const et_model *m, const char *name, int h, int w, int c)
{
    const et_layer_info *l = layer(m, name);
    cr_assert(l->out.h == h && l->out.w == w && l->out.c == c, "%s: %dx%dx%d, Keras %dx%dx%d", name,
              l->out.h, l->out.w, l->out.c, h, w, c);
}

/* The backbone's totals (Keras include_top=False). */
static et_model_totals backbone(const et_model *m)
{
    return et_model_totals_range(m, 0, et_model_backbone_nodes(m));
}

/* Every add node, in order, as "a,b,c". */
static void add_names(const et_model *m, char *out, size_t n)
{
    out[0] = '\0';
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        if (l->kind == ET_NODE_ADD) {
            strncat(out, l->name, n - strlen(out) - 1);
            strncat(out, ",", n - strlen(out) - 1);
        }
    }
}

/* Graph order, unique names, shapes of adds, and a parameter buffer whose
 * blocks are contiguous, do not overlap, and hold each tensor in the
 * kernels' layout. */
static void assert_well_formed(const et_model *m)
{
    size_t at = 0;
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_nn_node *n = et_nn_node_at(m, i);
        const et_layer_info *l = &n->info;
        cr_assert_eq(et_model_find(m, l->name), i, "name '%s' is unique", l->name);
        for (int k = 0; k < l->n_inputs; k++)
            cr_assert(l->inputs[k] >= 0 && l->inputs[k] < i, "%s: input before it", l->name);
        cr_assert_eq(l->n_inputs, i == 0 ? 0 : l->kind == ET_NODE_ADD ? 2 : 1, "%s", l->name);
        cr_assert(l->out.h >= 1 && l->out.w >= 1 && l->out.c >= 1, "%s", l->name);
        cr_assert_eq(l->param_offset, at, "%s starts where the previous block ended", l->name);
        const et_dims *in = &n->in_dims;
        size_t w = 0, b = 0, bn = 0;
        if (l->kind == ET_NODE_CONV2D)
            w = (size_t)l->out.c * l->kernel_h * l->kernel_w * in->c; /* [out_c][k_h][k_w][in_c] */
        else if (l->kind == ET_NODE_DEPTHWISE_CONV2D)
            w = (size_t)l->kernel_h * l->kernel_w * in->c * l->depth_multiplier;
        else if (l->kind == ET_NODE_DENSE)
            w = (size_t)l->out.c * in->h * in->w * in->c; /* [out][in] */
        else if (l->kind == ET_NODE_BATCHNORM)
            bn = (size_t)l->out.c;
        if (l->use_bias)
            b = (size_t)l->out.c;
        cr_assert_eq(n->weight, w ? at : ET_NN_NO_PARAM, "%s", l->name);
        cr_assert_eq(n->bias, b ? at + w : ET_NN_NO_PARAM, "%s", l->name);
        if (bn) {
            cr_assert(n->gamma == at && n->beta == at + bn && n->moving_mean == at + 2 * bn &&
                          n->moving_var == at + 3 * bn,
                      "%s: gamma, beta, moving mean, moving variance", l->name);
        }
        cr_assert_eq((size_t)(l->trainable_params + l->non_trainable_params), w + b + 4 * bn, "%s",
                     l->name);
        cr_assert_eq((size_t)l->non_trainable_params, 2 * bn, "%s", l->name);
        if (l->kind == ET_NODE_ADD) {
            const et_shape *a = &et_model_layer(m, l->inputs[0])->out;
            const et_shape *c = &et_model_layer(m, l->inputs[1])->out;
            cr_assert(a->h == c->h && a->w == c->w && a->c == c->c, "%s", l->name);
        }
        at += w + b + 4 * bn;
    }
    cr_assert_eq((int64_t)at, et_model_totals_all(m).params);
    const et_layer_info *last = et_model_layer(m, et_model_node_count(m) - 1);
    cr_assert_eq(last->kind, ET_NODE_SOFTMAX);
    cr_assert_eq(last->out.c, et_model_classes(m));
}

Test(nn, default_conv_net_is_the_keras_one)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 28;
    et_model *m = build(&imp, 10, 1);
    static const struct {
        const char *name;
        et_node_kind kind;
        int h, w, c;
        int64_t params, macs;
    } want[] = {
        {"input", ET_NODE_INPUT, 28, 28, 1, 0, 0},
        {"conv2d", ET_NODE_CONV2D, 28, 28, 32, 32 * 9 + 32, 28 * 28 * 32 * 9},
        {"conv2d_relu", ET_NODE_RELU, 28, 28, 32, 0, 0},
        {"max_pooling2d", ET_NODE_MAXPOOL, 14, 14, 32, 0, 0},
        {"conv2d_1", ET_NODE_CONV2D, 14, 14, 16, 16 * 288 + 16, 14 * 14 * 16 * 9 * 32},
        {"conv2d_1_relu", ET_NODE_RELU, 14, 14, 16, 0, 0},
        {"max_pooling2d_1", ET_NODE_MAXPOOL, 7, 7, 16, 0, 0},
        {"flatten", ET_NODE_FLATTEN, 1, 1, 784, 0, 0},
        {"dropout", ET_NODE_DROPOUT, 1, 1, 784, 0, 0},
        {"dense", ET_NODE_DENSE, 1, 1, 10, 784 * 10 + 10, 7840},
        {"dense_softmax", ET_NODE_SOFTMAX, 1, 1, 10, 0, 0},
    };
    cr_assert_eq(et_model_node_count(m), (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        cr_assert_str_eq(l->name, want[i].name);
        cr_assert_eq(l->kind, want[i].kind, "%s", l->name);
        cr_assert(l->out.h == want[i].h && l->out.w == want[i].w && l->out.c == want[i].c,
                  "%s: %dx%dx%d", l->name, l->out.h, l->out.w, l->out.c);
        cr_assert_eq(l->trainable_params, want[i].params, "%s", l->name);
        cr_assert_eq(l->macs, want[i].macs, "%s", l->name);
    }
    const et_layer_info *conv = layer(m, "conv2d"), *pool = layer(m, "max_pooling2d");
    cr_assert(conv->padding == ET_PAD_SAME && conv->use_bias && conv->kernel_h == 3);
    cr_assert(pool->padding == ET_PAD_SAME && pool->kernel_h == 2 && pool->stride_h == 2);
    cr_assert_float_eq(layer(m, "dropout")->dropout_rate, 0.25, 1e-12);
    cr_assert(layer(m, "flatten")->flat && layer(m, "dense")->flat && !pool->flat);
    /* Keras: Sequential([Input((28,28,1)), Conv2D(32,3,same,relu), MaxPooling2D(2,2,same),
     * Conv2D(16,3,same,relu), MaxPooling2D(2,2,same), Flatten(), Dropout(0.25),
     * Dense(10,softmax)]).count_params() == 12794; MACs 1,136,800. */
    et_model_totals t = et_model_totals_all(m);
    cr_assert_eq(t.params, 12794);
    cr_assert_eq(t.trainable_params, 12794);
    cr_assert_eq(t.non_trainable_params, 0);
    cr_assert_eq(t.macs, 1136800);
    cr_assert_eq(et_model_backbone_nodes(m), 0);
    et_shape in = et_model_input_shape(m);
    cr_assert(in.h == 28 && in.w == 28 && in.c == 1);
    assert_well_formed(m);
    et_model_destroy(m);
}

Test(nn, conv_net_hidden_dense_layers_and_odd_sizes)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = 9;
    imp.height = 5;
    imp.n_conv = 3;
    imp.conv[2] = (et_conv_layer){8, 5};
    imp.n_dense = 2;
    imp.dense[0] = 20;
    imp.dense[1] = 12;
    imp.dropout = 0;
    et_model *m = build(&imp, 3, 3);
    /* Same-padded pools round up: 5x9 -> 3x5 -> 2x3 -> 1x2. */
    assert_shape(m, "max_pooling2d", 3, 5, 32);
    assert_shape(m, "max_pooling2d_2", 1, 2, 8);
    assert_shape(m, "flatten", 1, 1, 16);
    assert_shape(m, "dense", 1, 1, 20);
    assert_shape(m, "dense_1", 1, 1, 12);
    assert_shape(m, "dense_2", 1, 1, 3);
    cr_assert_eq(layer(m, "conv2d_2")->trainable_params, 8 * 25 * 16 + 8);
    cr_assert_eq(et_model_find(m, "dropout"), -1, "rate 0: no dropout node");
    cr_assert_eq(layer(m, "dense_1_relu")->kind, ET_NODE_RELU);
    assert_well_formed(m);
    et_model_destroy(m);
}

/* learning.batch_norm: Conv2D(use_bias=False), BatchNormalization(), ReLU,
 * with Keras' names and its 4 values per channel (2 trainable). */
Test(nn, conv_net_with_batch_norm)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 28;
    imp.batch_norm = true;
    et_model *m = build(&imp, 10, 1);
    cr_assert_eq(layer(m, "conv2d")->trainable_params, 32 * 9, "no bias");
    cr_assert_eq(layer(m, "conv2d_1")->trainable_params, 16 * 9 * 32);
    const et_layer_info *bn = layer(m, "batch_normalization_1");
    cr_assert_eq(bn->kind, ET_NODE_BATCHNORM);
    cr_assert_eq(bn->trainable_params, 2 * 16);
    cr_assert_eq(bn->non_trainable_params, 2 * 16);
    cr_assert_eq(et_model_layer(m, bn->inputs[0]), layer(m, "conv2d_1"));
    cr_assert_eq(et_model_layer(m, layer(m, "conv2d_1_relu")->inputs[0]), bn);
    cr_assert_float_eq(layer(m, "batch_normalization")->bn_epsilon, 1e-3, 1e-9);
    assert_well_formed(m);
    et_model_destroy(m);
}

Test(nn, mobilenetv2_035_96x96x3_matches_keras)
{
    et_impulse imp = mobilenet(ET_MODEL_MOBILENETV2, 0.35, 96, 96);
    et_model *m = build(&imp, 4, 3);
    /* Keras 3.15 MobileNetV2(input_shape=(96,96,3), alpha=0.35, include_top=False,
     * weights=None): count_params() 410,208 = 396,128 trainable + 14,080
     * non-trainable; MACs 10,654,128 (computed from its layer shapes). */
    et_model_totals t = backbone(m);
    cr_assert_eq(t.params, 410208);
    cr_assert_eq(t.trainable_params, 396128);
    cr_assert_eq(t.non_trainable_params, 14080);
    cr_assert_eq(t.macs, 10654128);
    cr_assert_str_eq(et_model_layer(m, et_model_backbone_nodes(m) - 1)->name, "out_relu");
    /* Output shapes from the same Keras model. */
    assert_shape(m, "Conv1", 48, 48, 16);
    assert_shape(m, "expanded_conv_project", 48, 48, 8);
    assert_shape(m, "block_1_depthwise", 24, 24, 48);
    assert_shape(m, "block_3_depthwise", 12, 12, 48);
    assert_shape(m, "block_6_depthwise", 6, 6, 96);
    assert_shape(m, "block_13_depthwise", 3, 3, 192);
    assert_shape(m, "block_16_project", 3, 3, 112);
    assert_shape(m, "Conv_1", 3, 3, 1280);
    assert_shape(m, "out_relu", 3, 3, 1280);
    /* Keras' Add layers, exactly. */
    char adds[512];
    add_names(m, adds, sizeof adds);
    cr_assert_str_eq(adds, "block_2_add,block_4_add,block_5_add,block_7_add,block_8_add,"
                           "block_9_add,block_11_add,block_12_add,block_14_add,block_15_add,");
    const et_layer_info *add = layer(m, "block_2_add");
    cr_assert_str_eq(et_model_layer(m, add->inputs[0])->name, "block_1_project_BN");
    cr_assert_str_eq(et_model_layer(m, add->inputs[1])->name, "block_2_project_BN");
    /* block_1_pad is ((0, 1), (0, 1)) before a valid stride-2 depthwise conv. */
    const et_layer_info *dw = layer(m, "block_1_depthwise");
    cr_assert(dw->padding == ET_PAD_EXPLICIT && dw->pad_top == 0 && dw->pad_bottom == 1 &&
              dw->pad_left == 0 && dw->pad_right == 1 && dw->stride_h == 2);
    cr_assert_eq(layer(m, "block_2_depthwise")->padding, ET_PAD_SAME);
    const et_layer_info *bn = layer(m, "block_5_project_BN");
    cr_assert_float_eq(bn->bn_epsilon, 1e-3, 1e-12);
    cr_assert_float_eq(bn->bn_momentum, 0.999, 1e-12);
    cr_assert(!layer(m, "Conv1")->use_bias && !dw->use_bias);
    cr_assert_eq(layer(m, "Conv1_relu")->kind, ET_NODE_RELU6);
    cr_assert_eq(et_model_find(m, "expanded_conv_expand"), -1, "block 0 does not expand");
    assert_well_formed(m);
    et_model_destroy(m);
}

Test(nn, mobilenetv1_025_96x96x3_matches_keras)
{
    et_impulse imp = mobilenet(ET_MODEL_MOBILENETV1, 0.25, 96, 96);
    et_model *m = build(&imp, 4, 3);
    /* Keras 3.15 MobileNet(input_shape=(96,96,3), alpha=0.25, include_top=False,
     * weights=None): count_params() 218,544 = 213,072 trainable + 5,472
     * non-trainable; MACs 7,489,152. */
    et_model_totals t = backbone(m);
    cr_assert_eq(t.params, 218544);
    cr_assert_eq(t.trainable_params, 213072);
    cr_assert_eq(t.non_trainable_params, 5472);
    cr_assert_eq(t.macs, 7489152);
    cr_assert_str_eq(et_model_layer(m, et_model_backbone_nodes(m) - 1)->name, "conv_pw_13_relu");
    assert_shape(m, "conv1", 48, 48, 8);
    assert_shape(m, "conv_dw_1", 48, 48, 8);
    assert_shape(m, "conv_pw_1", 48, 48, 16);
    assert_shape(m, "conv_dw_2", 24, 24, 16);
    assert_shape(m, "conv_dw_4", 12, 12, 32);
    assert_shape(m, "conv_dw_6", 6, 6, 64);
    assert_shape(m, "conv_dw_12", 3, 3, 128);
    assert_shape(m, "conv_pw_13", 3, 3, 256);
    const et_layer_info *bn = layer(m, "conv1_bn");
    cr_assert_float_eq(bn->bn_epsilon, 1e-3, 1e-12);
    cr_assert_float_eq(bn->bn_momentum, 0.99, 1e-12);
    const et_layer_info *dw = layer(m, "conv_dw_12");
    cr_assert(dw->padding == ET_PAD_EXPLICIT && dw->pad_top == 0 && dw->pad_bottom == 1);
    char adds[64];
    add_names(m, adds, sizeof adds);
    cr_assert_str_eq(adds, "", "MobileNetV1 has no residual adds");
    assert_well_formed(m);
    et_model_destroy(m);
}

/* More Keras 3.15 backbones (include_top=False, weights=None): odd and
 * non-square inputs, one channel, the smallest and largest alphas. */
Test(nn, more_backbones_match_keras)
{
    static const struct {
        et_model_kind kind;
        double alpha;
        int h, w, c;
        int64_t params, trainable, macs;
        const char *layer;
        int lh, lw, lc;
    } cases[] = {
        {ET_MODEL_MOBILENETV2, 0.05, 96, 96, 1, 52176, 46224, 3794688, "Conv_1", 3, 3, 1280},
        {ET_MODEL_MOBILENETV2, 0.1, 33, 47, 3, 93312, 86080, 1032976, "Conv_1", 2, 2, 1280},
        {ET_MODEL_MOBILENETV2, 1.0, 224, 224, 3, 2257984, 2223872, 299494272, "Conv_1", 7, 7, 1280},
        {ET_MODEL_MOBILENETV2, 0.75, 35, 35, 1, 1381632, 1354992, 9222096, "Conv_1", 2, 2, 1280},
        {ET_MODEL_MOBILENETV2, 0.5, 128, 128, 3, 706224, 687680, 31298560, "Conv_1", 4, 4, 1280},
        {ET_MODEL_MOBILENETV1, 0.1, 96, 96, 1, 39827, 37659, 1322415, "conv_dw_2", 24, 24, 6},
        {ET_MODEL_MOBILENETV1, 1.0, 224, 224, 3, 3228864, 3206976, 567716352, "conv_dw_2", 56, 56,
         64},
        {ET_MODEL_MOBILENETV1, 0.35, 33, 47, 3, 414521, 406881, 2215959, "conv_dw_2", 8, 12, 22},
        {ET_MODEL_MOBILENETV1, 0.35, 33, 47, 3, 414521, 406881, 2215959, "conv_pw_13", 1, 1, 358},
        {ET_MODEL_MOBILENETV1, 0.75, 35, 35, 1, 1832544, 1816128, 6879312, "conv_dw_2", 9, 9, 48},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        et_impulse imp = mobilenet(cases[i].kind, cases[i].alpha, cases[i].h, cases[i].w);
        et_model *m = build(&imp, 3, cases[i].c);
        et_model_totals t = backbone(m);
        cr_assert(t.params == cases[i].params && t.trainable_params == cases[i].trainable &&
                      t.macs == cases[i].macs,
                  "case %zu (%s alpha %g %dx%dx%d): %lld params, %lld trainable, %lld MACs", i,
                  et_model_name(cases[i].kind), cases[i].alpha, cases[i].h, cases[i].w, cases[i].c,
                  (long long)t.params, (long long)t.trainable_params, (long long)t.macs);
        assert_shape(m, cases[i].layer, cases[i].lh, cases[i].lw, cases[i].lc);
        assert_well_formed(m);
        et_model_destroy(m);
    }
}

Test(nn, every_offered_alpha_and_size_builds)
{
    static const double v1[] = {0.1, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0};
    static const double v2[] = {0.05, 0.1, 0.35, 0.5, 0.75, 1.0};
    static const int sizes[] = {32, 33, 47, 64, 96, 127, 160, 224};
    for (int arch = 0; arch < 2; arch++) {
        const double *alphas = arch ? v2 : v1;
        int n_alphas = arch ? 6 : 7;
        for (int a = 0; a < n_alphas; a++)
            for (int s = 0; s < 8; s++) {
                et_impulse imp = mobilenet(arch ? ET_MODEL_MOBILENETV2 : ET_MODEL_MOBILENETV1,
                                           alphas[a], sizes[s], sizes[7 - s]);
                et_model *m = build(&imp, 7, s % 2 ? 1 : 3);
                assert_well_formed(m);
                et_model_destroy(m);
            }
    }
}

Test(nn, tiny_alphas_add_where_keras_adds)
{
    /* At alpha 0.05 every rounded width is 8 from block 0 to 12, so Keras adds
     * in expanded_conv and block_10 too; at 0.1 in expanded_conv only. */
    char adds[512];
    et_impulse imp = mobilenet(ET_MODEL_MOBILENETV2, 0.05, 96, 96);
    et_model *m = build(&imp, 2, 1);
    add_names(m, adds, sizeof adds);
    cr_assert_str_eq(adds, "expanded_conv_add,block_2_add,block_4_add,block_5_add,block_7_add,"
                           "block_8_add,block_9_add,block_10_add,block_11_add,block_12_add,"
                           "block_14_add,block_15_add,");
    et_model_destroy(m);
    imp = mobilenet(ET_MODEL_MOBILENETV2, 0.1, 33, 47);
    m = build(&imp, 2, 3);
    add_names(m, adds, sizeof adds);
    cr_assert_str_eq(adds, "expanded_conv_add,block_2_add,block_4_add,block_5_add,block_7_add,"
                           "block_8_add,block_9_add,block_11_add,block_12_add,block_14_add,"
                           "block_15_add,");
    /* correct_pad on an odd side pads (1, 1): 17 -> 9 with stride 2. */
    const et_layer_info *dw = layer(m, "block_1_depthwise");
    cr_assert(dw->pad_top == 1 && dw->pad_bottom == 1 && dw->pad_left == 0 && dw->pad_right == 1);
    assert_shape(m, "block_1_depthwise", 9, 12, 48);
    et_model_destroy(m);
}

Test(nn, transfer_head_matches_keras)
{
    /* Keras: MobileNetV2((96,96,1), alpha 0.35, include_top=False) -> GlobalAveragePooling2D
     * -> Dense(16, relu) -> Dropout(0.1) -> Dense(5, softmax): count_params() 430,501
     * (416,421 trainable), MACs 10,011,136. */
    et_impulse imp = mobilenet(ET_MODEL_MOBILENETV2, 0.35, 96, 96);
    et_model *m = build(&imp, 5, 1);
    et_model_totals t = et_model_totals_all(m);
    cr_assert_eq(t.params, 430501);
    cr_assert_eq(t.trainable_params, 416421);
    cr_assert_eq(t.macs, 10011136);
    static const char *const head[] = {
        "out_relu", "global_average_pooling2d", "dense", "dense_relu", "dropout",
        "dense_1",  "dense_1_softmax"};
    int n = et_model_node_count(m), first = n - 7;
    cr_assert_eq(first + 1, et_model_backbone_nodes(m));
    for (int i = 0; i < 7; i++)
        cr_assert_str_eq(et_model_layer(m, first + i)->name, head[i]);
    assert_shape(m, "global_average_pooling2d", 1, 1, 1280);
    cr_assert(layer(m, "global_average_pooling2d")->flat);
    cr_assert_eq(layer(m, "dense")->trainable_params, 1280 * 16 + 16);
    cr_assert_eq(layer(m, "dense_1")->trainable_params, 16 * 5 + 5);
    et_model_destroy(m);

    imp.head_neurons = 0;
    imp.dropout = 0;
    m = build(&imp, 5, 1);
    cr_assert_eq(et_model_node_count(m), et_model_backbone_nodes(m) + 3, "gap, dense, softmax");
    cr_assert_eq(layer(m, "dense")->trainable_params, 1280 * 5 + 5);
    et_model_destroy(m);
}

Test(nn, impossible_configs_are_refused)
{
    et_error err = {0};
    et_model *m = (et_model *)&err; /* must be reset to NULL on failure */
    et_impulse conv = et_impulse_defaults();
    cr_assert_eq(et_model_create_from_impulse(&conv, 0, 1, &m, &err), ET_EINVAL);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "0 classes"), "%s", err.msg);
    cr_assert_eq(et_model_create_from_impulse(&conv, 2, 5, &m, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "channels"), "%s", err.msg);
    et_impulse bad = conv;
    bad.conv[1].kernel = 9;
    cr_assert_eq(et_model_create_from_impulse(&bad, 2, 1, &m, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "conv_layers[1]") && strstr(err.msg, "kernel 1..7"), "%s", err.msg);
    bad = conv;
    bad.dropout = 0.95;
    cr_assert_eq(et_model_create_from_impulse(&bad, 2, 1, &m, &err), ET_EINVAL);

    et_impulse v2 = mobilenet(ET_MODEL_MOBILENETV2, 0.04, 96, 96);
    cr_assert_eq(et_model_create_from_impulse(&v2, 2, 3, &m, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "alpha") && strstr(err.msg, "0.05..1"), "%s", err.msg);
    v2 = mobilenet(ET_MODEL_MOBILENETV1, 0.05, 96, 96);
    cr_assert_eq(et_model_create_from_impulse(&v2, 2, 3, &m, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "mobilenetv1") && strstr(err.msg, "0.1..1"), "%s", err.msg);
    v2 = mobilenet(ET_MODEL_MOBILENETV2, 0.35, 31, 96);
    cr_assert_eq(et_model_create_from_impulse(&v2, 2, 3, &m, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "96x31") && strstr(err.msg, "32..224"), "%s", err.msg);
    cr_assert_null(m);
}

Test(nn, a_spatial_size_that_reaches_zero_names_the_layer)
{
    et_error err = {0};
    et_model *m = et_nn_begin(ET_MODEL_CONV, 2, &err);
    cr_assert_not_null(m);
    int x = et_nn_input(m, 4, 4, 1, "input");
    x = et_nn_conv2d(m, x, 8, 3, 1, ET_NN_VALID, true, "conv_a"); /* 2x2 */
    x = et_nn_depthwise(m, x, 1, 3, 2, et_nn_pad_explicit(0, 0, 0, 0), false, "conv_dw_%d", 7);
    cr_assert_eq(x, -1);
    /* Sticky: later layers do nothing and keep the first error. */
    x = et_nn_unary(m, ET_NODE_RELU, x, "after");
    cr_assert_eq(x, -1);
    et_model *out = NULL;
    cr_assert_eq(et_nn_finish(m, &out), ET_EINVAL);
    cr_assert_null(out);
    cr_assert(strstr(err.msg, "conv_dw_7") && strstr(err.msg, "2x2") &&
                  strstr(err.msg, "too small"),
              "%s", err.msg);

    m = et_nn_begin(ET_MODEL_CONV, 2, &err);
    x = et_nn_input(m, 2, 2, 1, "input");
    et_nn_conv2d(m, x, 4, 5, 1, ET_NN_VALID, true, "big_kernel");
    cr_assert_eq(et_nn_finish(m, &out), ET_EINVAL);
    cr_assert(strstr(err.msg, "big_kernel") && strstr(err.msg, "kernel 5"), "%s", err.msg);
}

Test(nn, summaries_text_and_json)
{
    et_impulse imp = mobilenet(ET_MODEL_MOBILENETV2, 0.35, 96, 96);
    et_model *m = build(&imp, 5, 1);
    char *text = et_model_summary_text(m);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "mobilenetv2 (alpha 0.35), input 96x96x1, 5 classes"), "%s", text);
    cr_assert(strstr(text, "Total params: 430,501 (1,722,004 bytes as float32)"), "%s", text);
    cr_assert(strstr(text, "Trainable params: 416,421"), "%s", text);
    cr_assert(strstr(text, "Non-trainable params: 14,080"), "%s", text);
    cr_assert(strstr(text, "MACs per sample: 10,011,136"), "%s", text);
    cr_assert(strstr(text, "block_2_add") &&
                  strstr(text, "block_1_project_BN + block_2_project_BN"),
              "%s", text);
    free(text);

    char *s = et_model_summary_json(m);
    cr_assert_not_null(s);
    json_error_t jerr;
    json_t *o = json_loads(s, 0, &jerr);
    cr_assert_not_null(o, "%s: %s", jerr.text, s);
    json_t *layers = json_object_get(o, "layers");
    cr_assert_eq(json_array_size(layers), (size_t)et_model_node_count(m));
    json_int_t sum = 0;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        cr_assert_str_eq(json_string_value(json_object_get(l, "name")),
                         et_model_layer(m, (int)i)->name);
        cr_assert_eq(json_array_size(json_object_get(l, "output")), 3);
        cr_assert(json_is_string(json_object_get(l, "kind")));
        cr_assert(json_is_integer(json_object_get(l, "macs")));
        sum += json_integer_value(json_object_get(l, "params"));
    }
    cr_assert_eq(sum, 430501);
    cr_assert_eq(json_integer_value(json_object_get(o, "params")), 430501);
    cr_assert_eq(json_integer_value(json_object_get(o, "trainable_params")), 416421);
    cr_assert_eq(json_integer_value(json_object_get(o, "macs")), 10011136);
    cr_assert_eq(json_integer_value(json_object_get(o, "classes")), 5);
    json_t *in = json_object_get(o, "input");
    cr_assert(json_integer_value(json_array_get(in, 0)) == 96 &&
              json_integer_value(json_array_get(in, 2)) == 1);
    json_t *flat =
        json_object_get(json_array_get(layers, (size_t)et_model_find(m, "dense")), "output");
    cr_assert_eq(json_integer_value(json_array_get(flat, 2)), 16, "dense is 1x1x16");
    cr_assert(strstr(s, "\"alpha\":0.35,") || strstr(s, "\"alpha\":0.35}"), "%s", s);
    json_decref(o);
    free(s);
    et_model_destroy(m);
    et_model_destroy(NULL);
}

/* ------------------------------------------------------------------------
 * The `model summary` command, through the real binary.
 */
static int run_model(const char *dir, char **out, const char *a1, const char *a2)
{
    return tu_run(out, NULL, "-C", dir, "model", a1, a2, NULL);
}

Test(nn, model_summary_command)
{
    char dir[4096], proj[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(proj, sizeof proj, "%s", tu_path(dir, "proj")); /* tu_path's buffers rotate */
    et_error err = {0};
    cr_assert_eq(et_project_init(proj, &err), 0, "%s", err.msg);

    /* No samples: the default impulse (96x96 rgb conv net) and 2 classes. */
    char *out = NULL;
    cr_assert_eq(run_model(proj, &out, "summary", "--json"), 0);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(o, "classes")), 2);
    cr_assert(json_is_true(json_object_get(o, "classes_assumed")));
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(o, "input"), 2)), 3);
    cr_assert_str_eq(json_string_value(json_object_get(o, "architecture")), "conv");
    json_decref(o);
    free(out);

    /* Three labels of grey 28x20 pictures: a 28x20x1 input and 3 classes. */
    static const char *const labels[] = {"boot", "sandal", "shoe"};
    for (int i = 0; i < 9; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/%s/%d.png", labels[i % 3], i);
        tu_image(tu_path(dir, rel), "png", 28, 20, 1, (unsigned)i);
    }
    et_project *p = tu_open(proj);
    et_import_options opt = et_import_defaults();
    opt.category = ET_TRAINING;
    et_import_result res;
    const char *paths[] = {tu_path(dir, "in")};
    cr_assert_eq(et_import(p, paths, 1, &opt, NULL, NULL, &res, &err), 0, "%s", err.msg);
    et_project_close(p);

    cr_assert_eq(run_model(proj, &out, "--json", NULL), 0, "summary is the default");
    o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(o, "classes")), 3);
    cr_assert(json_is_false(json_object_get(o, "classes_assumed")));
    json_t *in = json_object_get(o, "input");
    cr_assert(json_integer_value(json_array_get(in, 0)) == 20 &&
                  json_integer_value(json_array_get(in, 1)) == 28 &&
                  json_integer_value(json_array_get(in, 2)) == 1,
              "%s", out);
    /* 20x28 -> 10x14 -> 5x7: flatten 5*7*16 = 560, dense 560*3 + 3. */
    json_t *layers = json_object_get(o, "layers");
    json_t *last_dense = json_array_get(layers, json_array_size(layers) - 2);
    cr_assert_eq(json_integer_value(json_object_get(last_dense, "params")), 560 * 3 + 3, "%s", out);
    json_decref(o);
    free(out);

    cr_assert_eq(run_model(proj, &out, "summary", NULL), 0);
    cr_assert(strstr(out, "Model: conv, input 20x28x1, 3 classes"), "%s", out);
    cr_assert(strstr(out, "max_pooling2d_1") && strstr(out, "Total params:"), "%s", out);
    free(out);

    cr_assert_eq(run_model(proj, &out, "train", NULL), 2, "unknown sub-command");
    free(out);

    /* The raw block takes the samples' channels. */
    p = tu_open(proj);
    et_impulse imp;
    int64_t version = 0;
    cr_assert_eq(et_impulse_current(p, &imp, &version, &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&imp, "processing.type=raw", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&imp, "learning.model=mobilenetv2", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&imp, "input.width=32", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&imp, "input.height=32", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_save_version(p, &imp, "raw", &version, &err), 0, "%s", err.msg);
    et_project_close(p);
    cr_assert_eq(run_model(proj, &out, "summary", "--json"), 0);
    o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    in = json_object_get(o, "input");
    cr_assert_eq(json_integer_value(json_array_get(in, 2)), 1, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(o, "architecture")), "mobilenetv2");
    cr_assert_eq(json_integer_value(json_object_get(o, "impulse_version")), version);
    json_decref(o);
    free(out);
}
