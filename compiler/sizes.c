/* Sizes of the generated code in 64-bit arithmetic: element limits, static memory, one place.
 * Shapes are checked as the layers create them (cnn_check_elems); the buffers of the generated
 * trainer, which depend on the batch size, are checked here at the batch it is compiled for. */
#include "sizes.h"

#include <inttypes.h>
#include <string.h>

#include "layers.h"
#include "summary.h"

int64_t cnn_mul64(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        return -1;
    return r;
}

static void format_big(int64_t n, char *buf, size_t cap)
{
    cnn_format_count((long)n, buf, cap);
}

int cnn_check_elems(cnn_diag *d, cnn_loc loc, const char *what, const char *shape, int64_t count)
{
    if (count >= 0 && count <= CNN_MAX_ELEMS)
        return 0;
    char n[32], max[32];
    format_big(CNN_MAX_ELEMS, max, sizeof max);
    if (count < 0)
        return cnn_error(d, loc, "%s %s has more elements than a 64-bit count holds; at most %s "
                                 "are supported", what, shape, max);
    format_big(count, n, sizeof n);
    return cnn_error(d, loc, "%s %s has %s elements; at most %s are supported", what, shape, n,
                     max);
}

void cnn_format_bytes(int64_t n, char *buf, size_t cap)
{
    if (n < 1024)
        snprintf(buf, cap, "%" PRId64 " bytes", n);
    else if (n < ((int64_t)1 << 20))
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024);
    else if (n < ((int64_t)1 << 30))
        snprintf(buf, cap, "%.1f MiB", (double)n / (1 << 20));
    else
        snprintf(buf, cap, "%.2f GiB", (double)n / (1 << 30));
}

/* The buffers every layer has, by what the code generator emits for it (codegen.c): output and
 * its gradient, each parameter with its gradient and the optimizer's two slots, the kernel
 * transposed for backward; then the layer's own (its descriptor's `buffers`). A network
 * without a loss has no backward pass: no gradient of outputs (backward = 0). */
static int layer_buffers(const cnn_layer *L, int grad_in, int is_last, int backward,
                         cnn_buffer *b)
{
    int n = 0, flags = L->desc->gen_flags(L);
    int64_t size = cnn_shape_size(L->out);
    if (!(flags & GEN_ALIAS)) {
        b[n++] = (cnn_buffer){"output", size, 0, 4, 1};
        if (backward && L->learns)
            b[n++] = (cnn_buffer){"output's gradient", size, 0, 4, 1};
    }
    for (int p = 0; p < L->n_params; p++)
        b[n++] = (cnn_buffer){L->params[p].suffix, 0, L->params[p].size, 4,
                              L->params[p].trainable ? 4 : 1}; /* value, grad, m, v */
    if ((flags & GEN_KERNEL_T) && grad_in)
        b[n++] = (cnn_buffer){"transposed kernel", 0, L->params[0].size, 4, 1};
    if (L->desc->buffers)
        n += L->desc->buffers(L, grad_in, is_last, backward, b + n);
    return n;
}

int cnn_ir_check_sizes(cnn_ir *ir, int batch, int64_t max_bytes, cnn_diag *d)
{
    int64_t total = 0;
    char max[32], limit[32], have[32], count[32];
    format_big(CNN_MAX_ELEMS, max, sizeof max);
    for (int l = 0; l < ir->n_layers; l++) {
        const cnn_layer *L = &ir->layers[l];
        cnn_buffer b[CNN_MAX_LAYER_BUFFERS + CNN_MAX_LAYER_PARAMS + 3 + CNN_MAX_INPUTS];
        int backward = ir->train.loss != CNN_LOSS_NONE;
        int n = layer_buffers(L, cnn_grad_into(ir, L, 0), cnn_softmax_output(ir, l), backward,
                              b);
        /* The gradient of an input other layers read too has a buffer of its own (codegen.c). */
        for (int k = 0; k < L->n_inputs; k++)
            if (cnn_grad_edge_own(ir, L, k))
                b[n++] = (cnn_buffer){"input's own gradient", cnn_shape_size(L->ins[k]), 0, 4, 1};
        for (int i = 0; i < n; i++) {
            int64_t elems = cnn_mul64(b[i].per_image, batch);
            if (elems >= 0 && elems <= INT64_MAX - b[i].fixed)
                elems += b[i].fixed;
            else
                elems = -1;
            if (elems < 0 || elems > CNN_MAX_ELEMS) {
                if (elems < 0)
                    snprintf(count, sizeof count, "more than 2^63");
                else
                    format_big(elems, count, sizeof count);
                if (b[i].per_image > 0)
                    return cnn_error(d, L->loc,
                                     "%s's %s holds %s elements at batch %d (%" PRId64
                                     " per image); at most %s are supported",
                                     L->name, b[i].what, count, batch, b[i].per_image, max);
                return cnn_error(d, L->loc, "%s's %s holds %s elements; at most %s are supported",
                                 L->name, b[i].what, count, max);
            }
            /* elems <= 2^31 and bytes * copies <= 32: no overflow below. */
            total += elems * b[i].elem_bytes * b[i].copies;
        }
        if (total > max_bytes) {
            cnn_format_bytes(total, have, sizeof have);
            cnn_format_bytes(max_bytes, limit, sizeof limit);
            return cnn_error(d, L->loc,
                             "the generated trainer's static buffers reach %s at batch %d with "
                             "%s, over the limit of %s (--max-memory BYTES sets another)",
                             have, batch, L->name, limit);
        }
    }
    ir->static_bytes = total;
    ir->static_batch = batch;
    return 0;
}
