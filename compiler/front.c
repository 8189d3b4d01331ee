/* The front end in one call: read a .net file, parse it, build its IR, report every error. */
#include <errno.h>
#include <string.h>

#include "ir.h"

int cnn_front_load(const char *path, cnn_arena *arena, const cnn_front_opts *opts, cnn_ir *ir,
                   cnn_source *src, FILE *err)
{
    if (cnn_source_read(src, path)) {
        fprintf(err, "%s: error: cannot read the file: %s\n", path, strerror(errno));
        return -1;
    }
    return cnn_front_build(src, arena, opts, ir, err);
}

int cnn_front_build(const cnn_source *src, cnn_arena *arena, const cnn_front_opts *opts,
                    cnn_ir *ir, FILE *err)
{
    cnn_diag d = {0};
    cnn_ast ast;
    /* After syntax errors the statements that did parse are still checked (ir.c stops at
     * shapes), so that one run reports every independent error. */
    cnn_parse_source(src, arena, &ast, &d);
    int status = cnn_ir_build(&ast, src, arena, opts, ir, &d);
    if (status || d.warnings)
        cnn_diag_print(err, src, &d);
    return status ? -1 : 0;
}
