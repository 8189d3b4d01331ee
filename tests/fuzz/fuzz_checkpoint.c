/* libFuzzer target: the checkpoint reader (--load, --resume) on a small network with every
 * kind of tensor. A mutated file almost always fails the CRC-32 at its end first, so the
 * target writes the right CRC over each input's last 4 bytes, and, when the input's first byte
 * is odd, the right fingerprint too: the fuzzer then reaches the records behind them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_net.h"
#include "ir.h"
#include "reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cnn_model *model;
static char path[64];

static void setup(void)
{
    static cnn_source src;
    static cnn_arena arena;
    static cnn_ir ir;
    cnn_diag d = {0};
    cnn_ast ast;
    if (cnn_source_from_string(&src, "fuzz.net", fuzz_net_text) ||
        cnn_parse_source(&src, &arena, &ast, &d) || cnn_ir_build(&ast, &src, &arena, NULL, &ir, &d))
        abort();
    model = cnn_reference_new(&ir, 4);
    if (!model)
        abort();
    snprintf(path, sizeof path, "/tmp/cnnc-fuzz-ckpt-%d", (int)getpid());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model)
        setup();
    if (size > 1 << 16)
        return 0;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (size >= 20 && (copy[0] & 1)) {
        uint64_t f = cnn_fingerprint(model);
        for (int i = 0; i < 8; i++)
            copy[12 + i] = (uint8_t)(f >> (8 * i));
    }
    if (size >= 4) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), copy, (uInt)(size - 4));
        for (int i = 0; i < 4; i++)
            copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(copy, 1, size, f) != size || fclose(f))
        abort();
    free(copy);
    cnn_train_state state;
    int has_state;
    char err[256];
    if (cnn_checkpoint_load(path, model, &state, &has_state, err, sizeof err) != 0 &&
        strstr(err, path) == NULL)
        abort(); /* every refusal names the file */
    unlink(path);
    return 0;
}
