/* `cnnc --summary`: the Keras-style table of layers, shapes, parameters and FLOPs. */
#include "summary.h"

#include <string.h>

#include "sizes.h"

void cnn_format_count(long n, char *buf, size_t cap)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ld", n < 0 ? -n : n);
    size_t j = 0;
    if (n < 0 && j + 1 < cap)
        buf[j++] = '-';
    for (int i = 0; i < len && j + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && j + 1 < cap)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
}

static void rule(FILE *out, char c, int width)
{
    for (int i = 0; i < width; i++)
        fputc(c, out);
    fputc('\n', out);
}

void cnn_summary_print(FILE *out, const cnn_ir *ir)
{
    /* A graph gets Keras' "Connected to" column for functional models: what each layer reads.
     * The first column widens for long names (batch_normalization_12 (BatchNormalization)). */
    int graph = !ir->is_chain, name_w = 36;
    for (int i = 0; i < ir->n_layers; i++) {
        int len = (int)(strlen(ir->layers[i].name) + strlen(ir->layers[i].type_name) + 3);
        name_w = len > name_w ? len : name_w;
    }
    int width = name_w + 48 + (graph ? 26 : 0);
    fprintf(out, "Model: \"%s\" (%s)\n", ir->name, ir->source_name);
    rule(out, '_', width);
    fprintf(out, " %-*s %-22s %12s %10s%s\n", name_w, "Layer (type)", "Output Shape", "Param #",
            "MFLOPs", graph ? "  Connected to" : "");
    rule(out, '=', width);
    char input[48];
    cnn_shape_keras(ir->input, input, sizeof input);
    fprintf(out, " %-*s %-22s %12s %10s\n", name_w, "input (InputLayer)", input, "0", "-");
    rule(out, '_', width);
    for (int i = 0; i < ir->n_layers; i++) {
        const cnn_layer *L = &ir->layers[i];
        char name[96], shape[48], params[32], flops[32];
        snprintf(name, sizeof name, "%s (%s)", L->name, L->type_name);
        cnn_shape_keras(L->out, shape, sizeof shape);
        cnn_format_count(L->weights, params, sizeof params);
        if (L->flops > 0)
            snprintf(flops, sizeof flops, "%.2f", L->flops / 1e6);
        else
            strcpy(flops, "-");
        fprintf(out, " %-*s %-22s %12s %10s", name_w, name, shape, params, flops);
        for (int k = 0; graph && k < L->n_inputs; k++)
            fprintf(out, "%s%s", k ? ", " : "  ", L->in_names[k]);
        fputc('\n', out);
        rule(out, i + 1 == ir->n_layers ? '=' : '_', width);
    }
    char total[32], trainable[32], frozen[32];
    cnn_format_count(ir->total_params, total, sizeof total);
    cnn_format_count(ir->trainable_params, trainable, sizeof trainable);
    cnn_format_count(ir->total_params - ir->trainable_params, frozen, sizeof frozen);
    fprintf(out, "Total params: %s\n", total);
    fprintf(out, "Trainable params: %s\n", trainable);
    fprintf(out, "Non-trainable params: %s\n", frozen);
    fprintf(out, "FLOPs per image: %.2f M forward, %.2f M training step "
                 "(2 per multiply-add, conv and dense)\n",
            ir->forward_flops / 1e6, ir->train_flops / 1e6);
    char bytes[32], exact[32];
    cnn_format_bytes(ir->static_bytes, bytes, sizeof bytes);
    cnn_format_count((long)ir->static_bytes, exact, sizeof exact);
    fprintf(out, "Static memory of the compiled trainer: %s (%s bytes) at batch %d\n", bytes,
            exact, ir->static_batch);
}
