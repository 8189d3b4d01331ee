/* Helpers shared by the tests: run a program, load a .net file or string, tolerant compares. */
#include "support.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(FILE *f, size_t *size)
{
    fflush(f);
    rewind(f);
    size_t cap = 1024, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    if (size)
        *size = len;
    return buf;
}

char *read_whole_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = slurp(f, len);
    fclose(f);
    return text;
}

run_result run_program(char *const argv[])
{
    return run_program_in(NULL, argv);
}

static run_result run_with(const char *dir, const char *path, char *const argv[]);

run_result run_program_in(const char *dir, char *const argv[])
{
    return run_with(dir, NULL, argv);
}

run_result run_program_path(const char *path, char *const argv[])
{
    return run_with(NULL, path, argv);
}

static run_result run_with(const char *dir, const char *path, char *const argv[])
{
    run_result r = {.status = -1};
    FILE *out = tmpfile(), *err = tmpfile();
    if (!out || !err) {
        if (out)
            fclose(out);
        if (err)
            fclose(err);
        return r;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (dir && chdir(dir) != 0)
            _exit(126);
        if (path)
            setenv("PATH", path, 1);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
        r.status = WEXITSTATUS(status);
    r.out = slurp(out, NULL);
    r.err = slurp(err, NULL);
    fclose(out);
    fclose(err);
    return r;
}

void run_result_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static int build(test_net *t)
{
    cnn_ast ast;
    if (cnn_parse_source(&t->src, &t->arena, &ast, &t->diag))
        return -1;
    return cnn_ir_build(&ast, &t->src, &t->arena, NULL, &t->ir, &t->diag);
}

int test_net_from_string(test_net *t, const char *text)
{
    memset(t, 0, sizeof *t);
    if (cnn_source_from_string(&t->src, "test.net", text))
        return -1;
    return build(t);
}

int test_net_from_file(test_net *t, const char *path)
{
    memset(t, 0, sizeof *t);
    if (cnn_source_read(&t->src, path))
        return -1;
    return build(t);
}

void test_net_free(test_net *t)
{
    cnn_source_free(&t->src);
    cnn_arena_free(&t->arena);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **list_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    size_t sl = strlen(suffix);
    while (names && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= sl || strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        if (n + 2 > cap) {
            char **bigger = realloc(names, (cap *= 2) * sizeof *names);
            if (!bigger)
                break;
            names = bigger;
        }
        size_t need = strlen(dir) + len + 2;
        names[n] = malloc(need);
        if (names[n])
            snprintf(names[n++], need, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (!names)
        return NULL;
    names[n] = NULL;
    qsort(names, n, sizeof *names, compare_names);
    return names;
}

void free_names(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

int close_enough(double a, double b, double rel_tol, double abs_tol)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= abs_tol + rel_tol * scale;
}

int remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int network_tests(void (*fn)(void **), int extra, struct CMUnitTest **tests, char ***paths)
{
    char **nets = list_files(SOURCE_DIR "/tests/nets", ".net");
    char **models = list_files(SOURCE_DIR "/models", ".net");
    int nn = 0, nm = 0;
    while (nets && nets[nn])
        nn++;
    while (models && models[nm])
        nm++;
    *paths = calloc((size_t)(nn + nm) + 1, sizeof **paths);
    *tests = calloc((size_t)(nn + nm + extra), sizeof **tests);
    for (int i = 0; i < nn + nm && *paths && *tests; i++) {
        char *path = i < nn ? nets[i] : models[i - nn];
        (*paths)[i] = path;
        (*tests)[i].name = strrchr(path, '/') + 1;
        (*tests)[i].test_func = fn;
        (*tests)[i].initial_state = path;
    }
    free(nets); /* the paths themselves now belong to *paths */
    free(models);
    return nn + nm;
}

int count_names(char **names)
{
    int n = 0;
    while (names && names[n])
        n++;
    return n;
}

int append_tests(struct CMUnitTest *tests, void (*fn)(void **), char **paths)
{
    int n = count_names(paths);
    for (int i = 0; i < n; i++)
        tests[i] = (struct CMUnitTest){strrchr(paths[i], '/') + 1, fn, NULL, NULL, paths[i]};
    return n;
}

char **graph_models(void)
{
    char **graph = list_files(SOURCE_DIR "/models/graph", ".net");
    char **tiny = list_files(SOURCE_DIR "/models/tiny", ".net");
    int ng = count_names(graph), nt = count_names(tiny);
    char **all = calloc((size_t)(ng + nt) + 1, sizeof *all);
    for (int i = 0; all && i < ng + nt; i++)
        all[i] = i < ng ? graph[i] : tiny[i - ng];
    if (!all) {
        free_names(graph);
        free_names(tiny);
        return NULL;
    }
    free(graph); /* the names now belong to all */
    free(tiny);
    return all;
}

char **graph_nets(void)
{
    return list_files(SOURCE_DIR "/tests/graphs", ".net");
}

char **run_only_nets(void)
{
    return list_files(SOURCE_DIR "/tests/run_only", ".net");
}

void perturb_trainable(cnn_model *m, cnn_rng *rng, float scale)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].grad)
            for (size_t j = 0; j < m->tensors[i].size; j++)
                m->tensors[i].value[j] += scale * (cnn_rng_uniform(rng) - 0.5f);
}

int write_idx_images(const char *path, int n, int h, int w, int c, const uint8_t *bytes,
                     cnn_rng *rng)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned char head[20] = {0, 0, 8, 4};
    uint32_t dims[4] = {(uint32_t)n, (uint32_t)h, (uint32_t)w, (uint32_t)c};
    for (int d = 0; d < 4; d++)
        for (int b = 0; b < 4; b++)
            head[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    int bad = fwrite(head, 1, sizeof head, f) != sizeof head;
    size_t size = (size_t)n * (size_t)h * (size_t)w * (size_t)c;
    for (size_t i = 0; i < size && !bad; i++)
        bad = fputc(bytes ? bytes[i] : (int)cnn_rng_below(rng, 256), f) == EOF;
    return fclose(f) != 0 || bad ? -1 : 0;
}

int write_idx_floats(const char *path, int n, int features, const float *values)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned char head[12] = {0, 0, 0x0D, 2};
    uint32_t dims[2] = {(uint32_t)n, (uint32_t)features};
    for (int d = 0; d < 2; d++)
        for (int b = 0; b < 4; b++)
            head[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    int bad = fwrite(head, 1, sizeof head, f) != sizeof head;
    for (size_t i = 0; i < (size_t)n * (size_t)features && !bad; i++) {
        uint32_t u;
        memcpy(&u, &values[i], 4);
        unsigned char be[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16),
                               (unsigned char)(u >> 8), (unsigned char)u};
        bad = fwrite(be, 1, 4, f) != 4;
    }
    return fclose(f) != 0 || bad ? -1 : 0;
}

void random_weights(cnn_model *m, cnn_rng *rng, float scale)
{
    cnn_init_tensors(m, rng);
    perturb_trainable(m, rng, scale);
    for (int i = 0; i < m->n_tensors; i++) {
        cnn_tensor *t = &m->tensors[i];
        if (t->grad)
            continue;
        int var = strstr(t->name, "variance") != NULL;
        for (size_t j = 0; j < t->size; j++)
            t->value[j] = var ? 0.5f + cnn_rng_uniform(rng) : cnn_rng_uniform(rng) - 0.5f;
    }
}
