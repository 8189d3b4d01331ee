/* libFuzzer target: cnnc import on arbitrary bytes as an ONNX model. Whatever it accepts must
 * make a .net file that cnnc's front end reads back, with exactly the tensors the importer
 * gives each layer: a refusal is fine, a model that imports to something else is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir.h"
#include "onnx_import.h"
#include "reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        abort();
    cnn_arena arena = {0};
    cnn_import imp;
    char err[1200];
    if (cnn_onnx_import(data, size, "fuzz.onnx", NULL, 0, "fuzz", &arena, &imp, err,
                        sizeof err) == 0) {
        cnn_source src = {0};
        cnn_ir ir;
        if (cnn_source_from_string(&src, "fuzz.net", imp.net))
            abort();
        /* The front end may refuse a shape the importer did not check (a too large network):
         * an error, not a finding. What it accepts must take the imported tensors. */
        /* Small networks only through the reference: its buffers are what the fuzzer would
         * otherwise spend its time allocating. */
        if (cnn_front_build(&src, &arena, NULL, &ir, sink) == 0 &&
            ir.static_bytes < (64 << 20)) {
            cnn_model *m = cnn_reference_new(&ir, 1);
            if (m && cnn_import_set_tensors(&imp, &ir, m, err, sizeof err) != 0) {
                fprintf(stderr, "imported, and the tensors do not fit: %s\n%s", err, imp.net);
                abort();
            }
            cnn_model_destroy(m);
        }
        cnn_source_free(&src);
    }
    cnn_arena_free(&arena);
    return 0;
}
