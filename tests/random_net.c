/* Random valid .net files: a grammar walked with a seeded generator, shapes tracked so that
 * every network is valid. cnnc refusing one is a finding as much as a disagreement is. */
#include "random_net.h"
#include "support.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

typedef struct out {
    char *buf;
    size_t cap, len;
} out;

static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

static int below(cnn_rng *r, int n)
{
    return (int)cnn_rng_below(r, (uint32_t)n);
}

static int min3(int a, int b, int c)
{
    int m = a < b ? a : b;
    return m < c ? m : c;
}

static const char *const acts[] = {"", " linear", " relu", " leaky_relu", " sigmoid", " tanh"};

/* An activation word, with alpha= now and then for leaky_relu. */
static void activation(out *o, cnn_rng *r)
{
    int a = below(r, 6);
    put(o, "%s", acts[a]);
    if (a == 3 && below(r, 2))
        put(o, " alpha=0.%d", 1 + below(r, 5));
}

/* A standalone activation statement: never linear, so that it computes something. */
static void activation_layer(out *o, cnn_rng *r)
{
    put(o, "activation");
    int a = 2 + below(r, 4);
    put(o, "%s", acts[a]);
    if (a == 3 && below(r, 2))
        put(o, " alpha=0.%d", 1 + below(r, 5));
    put(o, "\n");
}

/* l1=, l2=, init=, bias=no, each now and then. */
static void weight_options(out *o, cnn_rng *r)
{
    static const char *const inits[] = {"glorot", "he", "glorot_normal", "he_uniform"};
    if (!below(r, 4))
        put(o, " l1=0.00%d", 1 + below(r, 5));
    if (!below(r, 4))
        put(o, " l2=0.00%d", 1 + below(r, 5));
    if (!below(r, 4))
        put(o, " init=%s", inits[below(r, 4)]);
    if (!below(r, 5))
        put(o, " bias=no");
}

/* Dropout, or (where allowed) batchnorm. The agreement tests run batches of 4 images: after
 * a dense layer batchnorm would normalize 4 values per channel, and after another batchnorm it
 * would leave the first one's parameters a gradient near zero; in both, float rounding
 * against the reference's double is amplified past the tests' 1e-4 (seen: 0.2% on a bias
 * upstream). tests/nets/batchnorm_dense.net holds the dense case at a size it is well posed. */
static int dropout_or_batchnorm(out *o, cnn_rng *r, int batchnorm_ok)
{
    if (!batchnorm_ok || below(r, 2)) {
        put(o, "dropout 0.%d\n", 1 + below(r, 5));
        return 0;
    }
    put(o, "batchnorm");
    if (!below(r, 3))
        put(o, " momentum=0.%d", 5 + below(r, 5));
    if (!below(r, 3))
        put(o, " eps=0.00%d", 1 + below(r, 9));
    put(o, "\n");
    return 1;
}

/* Output size along one axis (Keras' valid and same padding). */
static int conv_out(int in, int k, int s, int same)
{
    return same ? (in + s - 1) / s : (in - k) / s + 1;
}

void random_net(cnn_rng *r, char *buf, size_t cap)
{
    out o = {buf, cap, 0};
    buf[0] = '\0';
    if (!below(r, 8)) { /* a flat input: dense layers only */
        put(&o, "input %d\n", 2 + below(r, 30));
    } else {
        int h = 3 + below(r, 12), w = 3 + below(r, 12), last_batchnorm = 0;
        put(&o, "input %dx%dx%d\n", h, w, 1 + below(r, 4));
        for (int n = 1 + below(r, 4); n > 0; n--) {
            int kind = below(r, 8);
            if (kind < 4) { /* conv */
                int same = below(r, 3) == 0, s = below(r, 4) == 0 ? 2 : 1;
                int kmax = same ? 4 : min3(h, w, 4);
                int kh = 1 + below(r, kmax), kw = below(r, 3) ? kh : 1 + below(r, same || w > 4 ? 4 : w);
                int f = 1 + below(r, 6);
                put(&o, kh == kw && below(r, 2) ? "conv %d %d" : "conv %d %dx%d", f, kh, kw);
                activation(&o, r);
                if (s > 1)
                    put(&o, " stride=%d", s);
                if (same)
                    put(&o, " pad=same");
                else if (!below(r, 4))
                    put(&o, " pad=valid");
                weight_options(&o, r);
                put(&o, "\n");
                h = conv_out(h, kh, s, same);
                w = conv_out(w, kw, s, same);
            } else if (kind < 6 && h >= 2 && w >= 2) { /* pool */
                int k = 2 + (h >= 3 && w >= 3 ? below(r, 2) : 0), s = 1 + below(r, k);
                put(&o, "pool %d%s", k, below(r, 2) ? " avg" : below(r, 2) ? " max" : "");
                if (s != k)
                    put(&o, " stride=%d", s);
                put(&o, "\n");
                h = (h - k) / s + 1;
                w = (w - k) / s + 1;
            } else if (kind == 7 && below(r, 2)) {
                activation_layer(&o, r);
            } else {
                last_batchnorm = dropout_or_batchnorm(&o, r, !last_batchnorm);
                continue;
            }
            last_batchnorm = 0;
        }
        put(&o, "flatten\n");
    }
    for (int n = below(r, 3); n > 0; n--) {
        put(&o, "dense %d", 2 + below(r, 15));
        activation(&o, r);
        weight_options(&o, r);
        put(&o, "\n");
        if (!below(r, 3))
            dropout_or_batchnorm(&o, r, 0);
        if (!below(r, 4))
            activation_layer(&o, r);
    }
    put(&o, "dense %d softmax", 2 + below(r, 4));
    weight_options(&o, r);
    static const char *const optimizers[] = {"sgd momentum=0.9", "rmsprop", "adam", "adamw"};
    put(&o, "\ntrain { optimizer %s; seed %d }\n", optimizers[below(r, 4)], below(r, 1000));
}

char **random_net_files(const char *prefix, unsigned long seed, int n)
{
    char **paths = calloc((size_t)n + 1, sizeof *paths);
    mkdir("random-nets", 0777);
    for (int i = 0; paths && i < n; i++) {
        char path[512], text[4096];
        snprintf(path, sizeof path, "random-nets/%s_%lu_%d.net", prefix, seed, i);
        cnn_rng rng;
        cnn_rng_seed(&rng, (uint64_t)seed * 1000003u + (uint64_t)i);
        random_net(&rng, text, sizeof text);
        FILE *f = fopen(path, "w");
        int bad = !f || fputs(text, f) < 0;
        if ((f && fclose(f)) || bad || !(paths[i] = strdup(path))) {
            free_names(paths);
            return NULL;
        }
    }
    return paths;
}
