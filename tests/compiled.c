/* compiled_load (compiled.h): cnnc, the two compilers, dlopen. */
#include "compiled.h"

#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

#include "support.h"

cnn_model *compiled_load(const char *net, const char *dir, const char *name, int batch,
                         void **so)
{
    char c_file[512], so_file[512], batch_s[16];
    snprintf(c_file, sizeof c_file, "%s/%s.c", dir, name);
    snprintf(so_file, sizeof so_file, "%s/%s.so", dir, name);
    snprintf(batch_s, sizeof batch_s, "%d", batch);
    char *gen[] = {CNNC_PATH, (char *)net, "-o", c_file, "--batch", batch_s, NULL};
    run_result r = run_program(gen);
    if (r.status != 0)
        fail_msg("cnnc failed on %s: %s", net, r.err);
    run_result_free(&r);

    /* Warning-free with both compilers, the project's flags and -pedantic: the other compiler
     * only checks (its sanitizer runtime would not mix with ours), this one builds. */
    if (access(TEST_OTHER_CC, X_OK) == 0) {
        char *check[] = {TEST_OTHER_CC, "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror",
                         "-fsyntax-only", "-I" SOURCE_DIR "/runtime", c_file, NULL};
        r = run_program(check);
        if (r.status != 0)
            fail_msg("%s rejects the output for %s:\n%s", TEST_OTHER_CC, net, r.err);
        run_result_free(&r);
    }
    char *cc[] = {TEST_CC, "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2", "-fPIC",
                  "-shared", "-DCNNC_NO_MAIN", "-I" SOURCE_DIR "/runtime",
                  TEST_SANITIZE[0] ? TEST_SANITIZE : "-DCNNC_UNSANITIZED", c_file, "-o", so_file,
                  "-lopenblas", "-lm", NULL};
    r = run_program(cc);
    if (r.status != 0)
        fail_msg("%s failed on the output for %s:\n%s", TEST_CC, net, r.err);
    run_result_free(&r);
    *so = dlopen(so_file, RTLD_NOW | RTLD_LOCAL);
    if (!*so)
        fail_msg("dlopen %s: %s", so_file, dlerror());
    char sym[128];
    snprintf(sym, sizeof sym, "%s_model", name);
    cnn_model *(*model)(void) = (cnn_model * (*)(void)) dlsym(*so, sym);
    assert_non_null(model);
    cnn_model *m = model();
    assert_int_equal(m->max_batch, batch);
    return m;
}
