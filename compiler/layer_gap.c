/* gap: global average pooling, HxWxC to C features, each channel's mean over the image
 * (Keras GlobalAveragePooling2D). To the code generator and the export it is an average pool
 * whose window is the whole image, read as a vector after. */
#include "layers.h"

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (L->in.rank != 3) {
        cnn_error(d, L->loc, "'gap' averages an image over its height and width; its input is "
                             "a vector");
        cnn_note_input(L, d);
        return -1;
    }
    L->out = (cnn_shape){1, 1, 1, L->in.c};
    L->pool = CNN_POOL_AVG;
    L->kh = L->sh = L->in.h;
    L->kw = L->sw = L->in.w;
    return 0;
}

const cnn_layer_desc cnn_layer_gap = {
    .keyword = "gap",
    .type = CNN_LAYER_GAP,
    .keras_name = "global_average_pooling2d",
    .keras_type = "GlobalAveragePooling2D",
    .usage = "gap",
    .max_positional = 0,
    .infer = infer,
    .gen_flags = cnn_pool_gen_flags,
    .emit_buffers = cnn_pool_emit_buffers,
    .emit_forward = cnn_pool_emit_forward,
    .emit_backward = cnn_pool_emit_backward,
    .buffers = cnn_pool_buffers,
};
