/* `cnnc plot` on small logs written here: each picture is a real PNG of the expected size, a
 * malformed or empty log is a clear error naming it, and a missing gnuplot says how to get it.
 * Skipped when gnuplot is absent (make test installs it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

static char dir[] = "/tmp/cnnc-plot-XXXXXX";

static void put(const char *sub, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A PNG's signature and, from its IHDR chunk, its width and height. */
static void assert_png(const char *sub, const char *name, unsigned width, unsigned height)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s was not written", path);
    unsigned char h[24];
    size_t n = fread(h, 1, sizeof h, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(n, 24);
    assert_memory_equal(h, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(h + 12, "IHDR", 4);
    unsigned w = (unsigned)h[16] << 24 | h[17] << 16 | h[18] << 8 | h[19];
    unsigned hh = (unsigned)h[20] << 24 | h[21] << 16 | h[22] << 8 | h[23];
    assert_int_equal(w, width);
    assert_int_equal(hh, height);
    assert_true(size > 10000); /* a drawing, not an empty canvas */
}

static run_result plot(const char *sub)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    char *argv[] = {CNNC_PATH, "plot", path, NULL};
    return run_program(argv);
}

static void skip_without_gnuplot(void)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        print_message("gnuplot is absent (apt-get install gnuplot-nox)\n");
        skip();
    }
}

static const char *const epochs =
    "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
    "1,0.001,0.54,0.80,0.37,0.86,10.1\n2,0.001,0.34,0.87,0.31,0.88,10.0\n"
    "3,0.0005,0.29,0.89,0.30,0.89,10.2\n4,0.0005,0.26,0.90,0.29,0.89,10.0\n";

static void run_pictures(void **state)
{
    (void)state;
    skip_without_gnuplot();
    put("run", "epochs.csv", epochs);
    put("run", "confusion.csv", "true\\predicted,cat,\"dog, big\",bird\ncat,50,3,1\n"
                                "\"dog, big\",10,40,0\nbird,0,0,7\n");
    put("run", "kfold.csv", "fold,loss,accuracy,images\n1,0.30,0.90,100\n2,0.25,0.92,100\n"
                            "3,0.28,0.91,100\n");
    run_result r = plot("run");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "training.png"));
    run_result_free(&r);
    assert_png("run", "training.png", 1400, 540);
    assert_png("run", "confusion.png", 220 + 62 * 3 + 120, 220 + 62 * 3);
    assert_png("run", "kfold.png", 1400, 540);
}

static void comparison_of_runs(void **state)
{
    (void)state;
    skip_without_gnuplot();
    put("a", "epochs.csv", epochs);
    put("b", "epochs.csv", "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
                           "1,0.001,0.5,0.8,0.4,0.85,1\n2,0.001,0.3,0.88,0.32,0.87,1\n");
    char out[512], a[512], b[512];
    snprintf(out, sizeof out, "%s/compare.png", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    char *argv[] = {CNNC_PATH, "plot", "--compare", out, a, b, NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    assert_png(".", "compare.png", 1400, 560);
}

static void malformed_logs_are_errors(void **state)
{
    (void)state;
    skip_without_gnuplot();
    const struct {
        const char *text, *message;
    } cases[] = {
        {"epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n1,0.001,abc,0.8,0.3,0.8,1\n",
         "epochs.csv: line 2: 'abc' is not a number"},
        {"epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n1,0.001,0.5\n",
         "epochs.csv: line 2: 3 fields, expected 7"},
        {"epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n", "epochs.csv: no data rows"},
        {"", "epochs.csv: no data rows"},
        {"epoch,loss\n1,2\n", "epochs.csv: line 1: a header of 2 fields, expected 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put("bad", "epochs.csv", cases[i].text);
        run_result r = plot("bad");
        assert_int_equal(r.status, 1);
        if (!strstr(r.err, cases[i].message))
            fail_msg("case %zu: '%s' does not say '%s'", i, r.err, cases[i].message);
        run_result_free(&r);
    }
    put("badconf", "confusion.csv", "true\\predicted,a,b\na,1,2\n");
    run_result r = plot("badconf");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "confusion.csv: 1 rows but 2 columns"));
    run_result_free(&r);
    mkdir(strcat(strcpy((char[600]){0}, dir), "/none"), 0777);
    r = plot("none");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no logs to plot"));
    run_result_free(&r);
}

static void missing_gnuplot_says_how_to_install_it(void **state)
{
    (void)state;
    put("run2", "epochs.csv", epochs);
    char path[512];
    snprintf(path, sizeof path, "%s/run2", dir);
    char *argv[] = {CNNC_PATH, "plot", path, NULL};
    run_result r = run_program_path("/nonexistent", argv);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "gnuplot is not installed; install it with: apt-get install "
                                  "gnuplot-nox"));
    run_result_free(&r);
}

static int cleanup(void **state)
{
    (void)state;
    return remove_tree(dir);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_pictures),
        cmocka_unit_test(comparison_of_runs),
        cmocka_unit_test(malformed_logs_are_errors),
        cmocka_unit_test(missing_gnuplot_says_how_to_install_it),
    };
    return cmocka_run_group_tests_name("plot", tests, NULL, cleanup);
}
