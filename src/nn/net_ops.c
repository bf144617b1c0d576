/* The kernel tables a net dispatches through: one entry per kernel of
 * kernels.h, the reference set and the fast set. A net picks one in
 * et_net_create and calls through it, so the engine has one code path for
 * both. Only the fast set has fused kernels (conv2d + ReLU + max pool, batch
 * norm + ReLU(6)); the engine runs the pieces one by one where an entry is
 * NULL. */
#include "nn/net_internal.h"

#define ET_NET_OPS(suffix, set)                                                                    \
    .kind = set, .conv2d_scratch = et_conv2d_scratch_size_##suffix,                                \
    .conv2d_fwd = et_conv2d_forward_##suffix, .conv2d_bwd = et_conv2d_backward_##suffix,           \
    .dw_scratch = et_depthwise_conv2d_scratch_size_##suffix,                                       \
    .dw_fwd = et_depthwise_conv2d_forward_##suffix,                                                \
    .dw_bwd = et_depthwise_conv2d_backward_##suffix, .dense_fwd = et_dense_forward_##suffix,       \
    .dense_bwd = et_dense_backward_##suffix, .bn_train = et_batchnorm_forward_train_##suffix,      \
    .bn_infer = et_batchnorm_forward_infer_##suffix, .bn_bwd = et_batchnorm_backward_##suffix,     \
    .relu_fwd = et_relu_forward_##suffix, .relu_bwd = et_relu_backward_##suffix,                   \
    .relu6_fwd = et_relu6_forward_##suffix, .relu6_bwd = et_relu6_backward_##suffix,               \
    .maxpool_fwd = et_maxpool_forward_##suffix, .maxpool_bwd = et_maxpool_backward_##suffix,       \
    .avgpool_fwd = et_avgpool_forward_##suffix, .avgpool_bwd = et_avgpool_backward_##suffix,       \
    .gap_fwd = et_global_avgpool_forward_##suffix, .gap_bwd = et_global_avgpool_backward_##suffix, \
    .add_fwd = et_add_forward_##suffix, .dropout_fwd = et_dropout_forward_##suffix,                \
    .dropout_bwd = et_dropout_backward_##suffix

static const et_net_ops ref_ops = {ET_NET_OPS(ref, ET_KERNELS_REF)};
static const et_net_ops fast_ops = {
    ET_NET_OPS(fast, ET_KERNELS_FAST),
    .conv2d_relu_fwd = et_conv2d_relu_forward_fast,
    .conv2d_relu_maxpool_fwd = et_conv2d_relu_maxpool_forward_fast,
    .maxpool_relu_bwd = et_maxpool_relu_backward_fast,
    .conv2d_relu_maxpool_scratch = et_conv2d_relu_maxpool_scratch_size_fast,
    .conv2d_relu_maxpool_bwd = et_conv2d_relu_maxpool_backward_fast,
    .bn_act_train = et_batchnorm_act_forward_train_fast,
    .bn_act_infer = et_batchnorm_act_forward_infer_fast,
    .bn_act_bwd = et_batchnorm_act_backward_fast,
};

static const et_net_ops unfused_ops = {ET_NET_OPS(fast, ET_KERNELS_FAST)};

const et_net_ops *et_net_ops_unfused(void)
{
    return &unfused_ops;
}

const et_net_ops *et_net_ops_for(et_kernel_set k)
{
    return k == ET_KERNELS_REF ? &ref_ops : &fast_ops;
}

const char *et_kernel_set_name(et_kernel_set k)
{
    switch (k) {
    case ET_KERNELS_AUTO: return "auto";
    case ET_KERNELS_REF: return "ref";
    case ET_KERNELS_FAST: return "fast";
    }
    return "?";
}
