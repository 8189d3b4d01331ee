/* libFuzzer target: the .net front end (scanner, parser, IR, size checks), then the summary and
 * the code generator, into memory. Every input must end in a clean error or in C. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen.h"
#include "ir.h"
#include "summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    cnn_source src = {0};
    if (cnn_source_from_bytes(&src, "fuzz.net", (const char *)data, size))
        return 0;
    cnn_arena arena = {0};
    cnn_diag d = {0};
    cnn_ast ast;
    cnn_ir ir;
    cnn_parse_source(&src, &arena, &ast, &d);
    int failed = cnn_ir_build(&ast, &src, &arena, NULL, &ir, &d);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out) {
        if (failed)
            cnn_diag_print(out, &src, &d);
        else {
            cnn_gen_opts opts = {.batch = ir.static_batch, .version = "fuzz", .with_main = 1};
            cnn_summary_print(out, &ir);
            if (cnn_generate_c(out, &ir, &src, &opts) || cnn_generate_h(out, &ir, &opts))
                abort(); /* writing to memory cannot fail but for memory */
        }
        fclose(out);
    }
    /* An error was recorded exactly when the build failed. */
    if ((d.failed != 0) != (failed != 0))
        abort();
    free(text);
    cnn_arena_free(&arena);
    cnn_source_free(&src);
    return 0;
}
