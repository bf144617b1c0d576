/* Output size and padding of windowed ops (TensorFlow's "same" and "valid").
 * Shared by every kernel variant, so it carries no _ref suffix. */
#include "kernels/kernels.h"

et_status et_pad_size(int in, int k, int stride, et_padding padding, int *out, int *pad_before,
                      int *pad_after, et_error *err)
{
    if (in < 1 || k < 1 || stride < 1)
        return et_error_set(err, ET_EINVAL,
                            "window needs input, kernel and stride >= 1 (got %d, %d, %d)", in, k,
                            stride);
    int o, total;
    switch (padding) {
    case ET_PADDING_VALID:
        if (k > in)
            return et_error_set(err, ET_EINVAL,
                                "kernel %d is larger than the input %d with valid padding; "
                                "use same padding or a smaller kernel",
                                k, in);
        o = (in - k) / stride + 1;
        total = 0;
        break;
    case ET_PADDING_SAME:
        o = (in + stride - 1) / stride;
        total = (o - 1) * stride + k - in;
        if (total < 0)
            total = 0;
        break;
    default: return et_error_set(err, ET_EINVAL, "unknown padding mode %d", (int)padding);
    }
    if (out)
        *out = o;
    if (pad_before)
        *pad_before = total / 2;
    if (pad_after)
        *pad_after = total - total / 2;
    return ET_OK;
}

et_status et_window_plan(et_window *win, et_padding padding, const et_dims *in, et_dims *out,
                         et_error *err)
{
    if (in->n < 1)
        return et_error_set(err, ET_EINVAL, "batch must be >= 1 (got %d)", in->n);
    int oh = 0, ow = 0, pt = 0, pl = 0;
    et_status st = et_pad_size(in->h, win->k_h, win->stride_h, padding, &oh, &pt, NULL, err);
    if (st < 0)
        return st;
    st = et_pad_size(in->w, win->k_w, win->stride_w, padding, &ow, &pl, NULL, err);
    if (st < 0)
        return st;
    win->pad_top = pt;
    win->pad_left = pl;
    out->n = in->n;
    out->h = oh;
    out->w = ow;
    return ET_OK;
}
