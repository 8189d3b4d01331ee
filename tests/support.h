/* Helpers shared by the tests: run a program, load a .net file or string, tolerant compares. */
#ifndef CNN_TEST_SUPPORT_H
#define CNN_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "arena.h"
#include "cnnrt.h"
#include "ir.h"

typedef struct run_result {
    int status; /* exit status, or -1 if the program did not exit normally */
    char *out, *err;
} run_result;

/* Runs argv[0] with argv, capturing stdout and stderr. */
run_result run_program(char *const argv[]);
/* The same, in directory dir. */
run_result run_program_in(const char *dir, char *const argv[]);
/* The same with PATH set to path (NULL: unchanged). */
run_result run_program_path(const char *path, char *const argv[]);
void run_result_free(run_result *r);

/* A network compiled from text or a file; everything lives until test_net_free. */
typedef struct test_net {
    cnn_arena arena;
    cnn_source src;
    cnn_ir ir;
    cnn_diag diag;
} test_net;

/* 0 on success; on failure the diagnostic is in t->diag. */
int test_net_from_string(test_net *t, const char *text);
int test_net_from_file(test_net *t, const char *path);
void test_net_free(test_net *t);

/* Names of the files in dir ending in suffix, sorted; NULL-terminated, free with free_names. */
char **list_files(const char *dir, const char *suffix);
void free_names(char **names);

/* A whole file's contents, NUL-terminated (len, if not NULL, gets its size); NULL if unreadable. */
char *read_whole_file(const char *path, size_t *len);

/* One test per network of tests/nets/ and models/, each running fn with its path as state,
 * followed by `extra` zeroed slots for the caller. Returns the count of networks; *paths owns
 * the paths (free_names) and *tests the array (free). */
int network_tests(void (*fn)(void **), int extra, struct CMUnitTest **tests, char ***paths);

/* How many names a NULL-terminated list holds (0 for NULL). */
int count_names(char **names);
/* Fills tests[0..] with one test of fn per path of the list, named by the file; returns how
 * many (tests must have room for count_names(paths)). */
int append_tests(struct CMUnitTest *tests, void (*fn)(void **), char **paths);
/* The graph models, models/graph/ and models/tiny/ (MLPerf Tiny's), NULL-terminated (free_names):
 * too large for finite differences, held to the reference by the generated code's tests. */
char **graph_models(void);
/* The networks of tests/graphs/ (branches, joins: what only the reference takes so far), a
 * NULL-terminated list of paths (free_names). */
char **graph_nets(void);
/* The networks of tests/run_only/: without a loss (loss none), only run, never trained. */
char **run_only_nets(void);

/* Moves every trainable value of m by a uniform amount in [-scale/2, scale/2): no gradient is
 * then checked only at an initializer's constant (zero biases, unit gammas). */
void perturb_trainable(cnn_model *m, cnn_rng *rng, float scale);

/* An idx4 file of n images h x w x c: the bytes given, or (bytes NULL) random ones from rng.
 * 0 on success. */
int write_idx_images(const char *path, int n, int h, int w, int c, const uint8_t *bytes,
                     cnn_rng *rng);
/* An IDX file of float32 (type 0x0D, big-endian), n rows of `features` values: loss mse's
 * inputs and targets. */
int write_idx_floats(const char *path, int n, int features, const float *values);

/* Initial weights, moved off their constants (perturb_trainable, by scale), and moving
 * statistics that are not 0 and 1 (means in [-0.5, 0.5), variances in [0.5, 1.5)), so that
 * what a batchnorm does shows. */
void random_weights(cnn_model *m, cnn_rng *rng, float scale);

/* Removes a test's temporary directory and everything in it; 0 on success. */
int remove_tree(const char *dir);

/* |a - b| <= abs_tol + rel_tol * max(|a|, |b|) */
int close_enough(double a, double b, double rel_tol, double abs_tol);

#endif
