/* Pictures of runs, drawn by gnuplot from the logs a run writes: training curves, the confusion
 * matrix, k-fold bars, and a comparison of several runs. The logs are read and checked here
 * first, so a malformed one is a clear error rather than a gnuplot failure. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnnrt.h"

#define MAX_ROWS 100000
#define MAX_COLS 1024

/* A CSV file of a header and numeric rows (empty fields are NaN); row labels kept apart for
 * files whose first column is a name (the confusion matrix). */
typedef struct table {
    int rows, cols;
    char **header;
    char **labels; /* first column of each row when it is a name, else NULL */
    double *v;     /* rows x cols, the label column (if any) left out */
} table;

static void table_free(table *t)
{
    for (int i = 0; t->header && i < t->cols + (t->labels ? 1 : 0); i++)
        free(t->header[i]);
    for (int i = 0; t->labels && i < t->rows; i++)
        free(t->labels[i]);
    free(t->header);
    free(t->labels);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Splits one CSV line in place (quotes as RFC 4180); returns the field count. */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                *out++ = *p++;
            }
            if (*p == '"')
                p++;
        } else
            while (*p && *p != ',')
                *out++ = *p++;
        int last = *p != ',';
        if (!last)
            p++;
        *out = '\0';
        fields[n++] = start;
        if (last)
            break;
    }
    return n;
}

static int table_read(table *t, const char *path, int named_rows, int want_cols, char *err,
                      size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    static char line[65536];
    char *fields[MAX_COLS];
    int lineno = 0, rc = -1, cap = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        int n = split_csv(line, fields, MAX_COLS);
        if (!t->header) {
            int cols = n - (named_rows ? 1 : 0);
            if (cols < 1 || (want_cols && n != want_cols)) {
                snprintf(err, errlen, "%s: line %d: a header of %d fields, expected %d", path,
                         lineno, n, want_cols);
                goto done;
            }
            t->cols = cols;
            t->header = calloc((size_t)n, sizeof *t->header);
            if (!t->header)
                goto oom;
            for (int i = 0; i < n; i++)
                t->header[i] = strdup(fields[i]);
            if (named_rows)
                t->labels = calloc(MAX_ROWS, sizeof *t->labels);
            continue;
        }
        if (n != t->cols + (named_rows ? 1 : 0)) {
            snprintf(err, errlen, "%s: line %d: %d fields, expected %d", path, lineno, n,
                     t->cols + (named_rows ? 1 : 0));
            goto done;
        }
        if (t->rows >= MAX_ROWS) {
            snprintf(err, errlen, "%s: more than %d rows", path, MAX_ROWS);
            goto done;
        }
        if (t->rows == cap) {
            cap = cap ? cap * 2 : 64;
            double *bigger = realloc(t->v, sizeof(double) * (size_t)cap * t->cols);
            if (!bigger)
                goto oom;
            t->v = bigger;
        }
        for (int i = 0; i < t->cols; i++) {
            const char *s = fields[i + (named_rows ? 1 : 0)];
            char *end;
            double v = *s ? strtod(s, &end) : NAN;
            if (*s && (*end || !isfinite(v))) {
                snprintf(err, errlen, "%s: line %d: '%s' is not a number", path, lineno, s);
                goto done;
            }
            t->v[(size_t)t->rows * t->cols + i] = v;
        }
        if (named_rows)
            t->labels[t->rows] = strdup(fields[0]);
        t->rows++;
    }
    if (!t->header || t->rows == 0) {
        snprintf(err, errlen, "%s: no data rows", path);
        goto done;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
done:
    fclose(f);
    if (rc)
        table_free(t);
    return rc;
}

static double at(const table *t, int r, int c)
{
    return t->v[(size_t)r * t->cols + c];
}

int cnn_have_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char dir[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s/gnuplot", (int)n, path);
        if (n && access(dir, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* While a script goes down the pipe, a gnuplot that dies makes writes fail (EPIPE) instead of
 * killing this process with SIGPIPE: a finished training run must never die of its pictures. */
static struct sigaction saved_sigpipe;

/* gnuplot reads the script from a pipe; it fails on any error (so does the plot). */
static FILE *gnuplot_open(void)
{
    struct sigaction ignore = {0};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &saved_sigpipe);
    FILE *g = popen("gnuplot", "w");
    if (!g)
        sigaction(SIGPIPE, &saved_sigpipe, NULL);
    return g;
}

static int gnuplot_close(FILE *g, const char *png, char *err, size_t errlen)
{
    int status = pclose(g);
    sigaction(SIGPIPE, &saved_sigpipe, NULL);
    if (status != 0) {
        snprintf(err, errlen, "%s: gnuplot failed (status %d)", png, status);
        return -1;
    }
    return 0;
}

/* gnuplot single-quoted strings: a quote is doubled. */
static void quoted(FILE *g, const char *s)
{
    fputc('\'', g);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', g);
        fputc(*s, g);
    }
    fputc('\'', g);
}

static const char *base_name(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    static char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)n, dir);
    char *slash = strrchr(buf, '/');
    return slash ? slash + 1 : buf;
}

static void terminal(FILE *g, const char *png, int w, int h)
{
    fprintf(g, "set terminal pngcairo size %d,%d font 'DejaVu Sans,11' noenhanced\n", w, h);
    fputs("set output ", g);
    quoted(g, png);
    fputs("\nset grid lc rgb '#dddddd'\nset border lc rgb '#555555'\n", g);
}

/* training.png: loss and accuracy per epoch, training and validation side by side, with the
 * learning rate on the loss panel's right axis when a schedule changes it. */
static int plot_training(const char *dir, const table *t, const char *title, char *err,
                         size_t errlen)
{
    char png[1200];
    snprintf(png, sizeof png, "%s/training.png", dir);
    FILE *g = gnuplot_open();
    if (!g) {
        snprintf(err, errlen, "%s: cannot run gnuplot", png);
        return -1;
    }
    int has_val = !isnan(at(t, 0, 4)), lr_changes = 0;
    for (int r = 1; r < t->rows; r++)
        lr_changes |= at(t, r, 1) != at(t, 0, 1);
    terminal(g, png, 1400, 540);
    fputs("$d << EOD\n", g);
    for (int r = 0; r < t->rows; r++)
        fprintf(g, "%g %.9g %.9g %.9g %.9g %.9g\n", at(t, r, 0), at(t, r, 1), at(t, r, 2),
                at(t, r, 3), has_val ? at(t, r, 4) : 0, has_val ? at(t, r, 5) : 0);
    fputs("EOD\nset multiplot layout 1,2 title ", g);
    quoted(g, title);
    fprintf(g, "\nset xlabel 'epoch'\nset xtics 1\nset xrange [0.5:%g]\n", at(t, t->rows - 1, 0) + 0.5);
    fputs("set key top right box opaque\nset title 'Loss'\nset ylabel 'loss'\n", g);
    if (lr_changes) {
        double lr_max = 0;
        for (int r = 0; r < t->rows; r++)
            lr_max = fmax(lr_max, at(t, r, 1));
        /* Headroom, so that the largest rate stays clear of the border and the legend. */
        fprintf(g, "set y2label 'learning rate'\nset y2tics\nset ytics nomirror\n"
                   "set format y2 '%%.1e'\nset y2range [0:%.9g]\n", lr_max * 1.35);
    }
    fputs("plot $d using 1:3 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'training'", g);
    if (has_val)
        fputs(", $d using 1:5 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'validation'", g);
    if (lr_changes)
        fputs(", $d using 1:2 axes x1y2 with steps lw 1 dt 2 lc rgb '#555555' title 'learning rate'", g);
    fputs("\nunset y2label\nunset y2tics\nset ytics mirror\n", g);
    fputs("set key bottom right box opaque\nset title 'Accuracy'\nset ylabel 'accuracy'\n", g);
    fputs("plot $d using 1:4 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'training'", g);
    if (has_val)
        fputs(", $d using 1:6 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'validation'", g);
    fputs("\nunset multiplot\n", g);
    return gnuplot_close(g, png, err, errlen);
}

/* confusion.png: a heat map normalized per true class, each cell's percentage written in it. */
static int plot_confusion(const char *dir, const table *t, const char *title, char *err,
                          size_t errlen)
{
    int k = t->rows;
    if (t->cols != k) {
        snprintf(err, errlen, "%s/confusion.csv: %d rows but %d columns", dir, k, t->cols);
        return -1;
    }
    char png[1200];
    snprintf(png, sizeof png, "%s/confusion.png", dir);
    FILE *g = gnuplot_open();
    if (!g) {
        snprintf(err, errlen, "%s: cannot run gnuplot", png);
        return -1;
    }
    int side = 220 + 62 * k;
    terminal(g, png, side + 120, side);
    fputs("unset grid\n$m << EOD\n", g);
    for (int i = 0; i < k; i++) {
        double total = 0;
        for (int j = 0; j < k; j++)
            total += at(t, i, j);
        for (int j = 0; j < k; j++)
            fprintf(g, "%d %d %.4f %.0f\n", j, i, total > 0 ? 100.0 * at(t, i, j) / total : 0.0,
                    at(t, i, j));
    }
    fputs("EOD\nset title ", g);
    quoted(g, title);
    fprintf(g, "\nset xlabel 'predicted class'\nset ylabel 'true class'\n"
               "set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\nset size ratio -1\n",
            k - 1, k - 1);
    fputs("set xtics rotate by 40 right (", g);
    for (int j = 0; j < k; j++) {
        fputs(j ? ", " : "", g);
        quoted(g, t->header[j + 1]);
        fprintf(g, " %d", j);
    }
    fputs(")\nset ytics (", g);
    for (int i = 0; i < k; i++) {
        fputs(i ? ", " : "", g);
        quoted(g, t->labels[i]);
        fprintf(g, " %d", i);
    }
    fputs(")\nset tics scale 0\nset cbrange [0:100]\nset cblabel '% of the true class'\n"
          "set palette defined (0 '#ffffff', 20 '#c6dbef', 60 '#4292c6', 100 '#08306b')\n"
          "unset key\n"
          "plot $m using 1:2:3 with image, "
          "$m using 1:2:($4 > 0 && $3 < 1 ? '<1%' : ($3 >= 1 && $3 < 55 ? sprintf('%.0f%%', $3) : '')) "
          "with labels "
          "font ',10' tc rgb '#000000', "
          "$m using 1:2:($3 >= 55 ? sprintf('%.0f%%', $3) : '') with labels font ',10' "
          "tc rgb '#ffffff'\n",
          g);
    return gnuplot_close(g, png, err, errlen);
}

/* kfold.png: accuracy and loss of each fold as bars, their mean as a line. */
static int plot_kfold(const char *dir, const table *t, const char *title, char *err,
                      size_t errlen)
{
    char png[1200];
    snprintf(png, sizeof png, "%s/kfold.png", dir);
    FILE *g = gnuplot_open();
    if (!g) {
        snprintf(err, errlen, "%s: cannot run gnuplot", png);
        return -1;
    }
    double ma = 0, ml = 0, lo = 1, hi = 0;
    for (int r = 0; r < t->rows; r++) {
        ma += at(t, r, 2) / t->rows;
        ml += at(t, r, 1) / t->rows;
        lo = fmin(lo, at(t, r, 2));
        hi = fmax(hi, at(t, r, 2));
    }
    terminal(g, png, 1400, 540);
    fputs("$f << EOD\n", g);
    for (int r = 0; r < t->rows; r++)
        fprintf(g, "%g %.9g %.9g\n", at(t, r, 0), at(t, r, 1), at(t, r, 2));
    fputs("EOD\nset multiplot layout 1,2 title ", g);
    quoted(g, title);
    fprintf(g, "\nset xlabel 'fold'\nset xtics 1\nset xrange [0.4:%d.6]\nset style fill solid 0.7 "
               "border lc rgb '#333333'\nset boxwidth 0.6\nset key top right box opaque\n",
            t->rows);
    double pad = fmax(0.005, (hi - lo) * 0.6);
    fprintf(g, "set title 'Accuracy per fold'\nset ylabel 'accuracy'\nset yrange [%g:%g]\n",
            fmax(0, lo - pad), fmin(1, hi + pad));
    fprintf(g, "plot $f using 1:3 with boxes lc rgb '#1f77b4' title 'fold', %.9g with lines "
               "lw 2 lc rgb '#d62728' title sprintf('mean %%.4f', %.9g)\n", ma, ma);
    fprintf(g, "set title 'Loss per fold'\nset ylabel 'loss'\nset yrange [0:*]\n"
               "plot $f using 1:2 with boxes lc rgb '#ff7f0e' title 'fold', %.9g with lines lw 2 "
               "lc rgb '#d62728' title sprintf('mean %%.4f', %.9g)\nunset multiplot\n", ml, ml);
    return gnuplot_close(g, png, err, errlen);
}

static int exists(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

int cnn_plot_run(const char *dir, char *written, size_t wlen, char *err, size_t errlen)
{
    if (!cnn_have_gnuplot()) {
        snprintf(err, errlen, "gnuplot is not installed; install it with: "
                              "apt-get install gnuplot-nox");
        return -1;
    }
    char path[1200], title[400];
    const char *name = base_name(dir);
    int drawn = 0;
    written[0] = '\0';
    table t;
    struct {
        const char *csv;
        int named, cols;
        int (*draw)(const char *, const table *, const char *, char *, size_t);
        const char *what;
    } kinds[] = {{"epochs.csv", 0, 7, plot_training, "training"},
                 {"confusion.csv", 1, 0, plot_confusion, "confusion"},
                 {"kfold.csv", 0, 4, plot_kfold, "kfold"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!exists(dir, kinds[k].csv))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, kinds[k].csv);
        if (table_read(&t, path, kinds[k].named, kinds[k].cols, err, errlen))
            return -1;
        double total = 0;
        for (int i = 0; k == 1 && i < t.rows * t.cols; i++)
            total += t.v[i];
        if (k == 0)
            snprintf(title, sizeof title, "%s: loss and accuracy per epoch", name);
        else if (k == 1)
            snprintf(title, sizeof title, "%s: confusion matrix on %.0f images", name, total);
        else
            snprintf(title, sizeof title, "%s: %d-fold cross-validation", name, t.rows);
        int rc = kinds[k].draw(dir, &t, title, err, errlen);
        table_free(&t);
        if (rc)
            return -1;
        size_t used = strlen(written);
        snprintf(written + used, wlen - used, "%s%s/%s.png", drawn ? " " : "", dir, kinds[k].what);
        drawn++;
    }
    if (!drawn) {
        snprintf(err, errlen, "%s: no logs to plot (epochs.csv, confusion.csv or kfold.csv)", dir);
        return -1;
    }
    return 0;
}

int cnn_plot_compare(const char *png, int n, char *const *dirs, char *err, size_t errlen)
{
    if (!cnn_have_gnuplot()) {
        snprintf(err, errlen, "gnuplot is not installed; install it with: "
                              "apt-get install gnuplot-nox");
        return -1;
    }
    table *t = calloc((size_t)n, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1, has_val = 1;
    double last = 1;
    for (int i = 0; i < n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/epochs.csv", dirs[i]);
        if (table_read(&t[i], path, 0, 7, err, errlen))
            goto done;
        has_val &= !isnan(at(&t[i], 0, 4));
        last = fmax(last, at(&t[i], t[i].rows - 1, 0));
    }
    FILE *g = gnuplot_open();
    if (!g) {
        snprintf(err, errlen, "%s: cannot run gnuplot", png);
        goto done;
    }
    terminal(g, png, 1400, 560);
    for (int i = 0; i < n; i++) {
        fprintf(g, "$r%d << EOD\n", i);
        for (int r = 0; r < t[i].rows; r++)
            fprintf(g, "%g %.9g %.9g\n", at(&t[i], r, 0), at(&t[i], r, has_val ? 5 : 3),
                    at(&t[i], r, has_val ? 4 : 2));
        fputs("EOD\n", g);
    }
    const char *which = has_val ? "validation" : "training";
    fprintf(g, "set multiplot layout 1,2 title '%s accuracy and loss per epoch'\n"
               "set xlabel 'epoch'\nset xtics 1\nset xrange [0.5:%g]\n"
               "set key bottom right box opaque\nset title '%s accuracy'\nset ylabel 'accuracy'\n"
               "plot ", has_val ? "Validation" : "Training", last + 0.5, which);
    for (int i = 0; i < n; i++) {
        fprintf(g, "%s$r%d using 1:2 with linespoints lw 2 pt %d title ", i ? ", " : "", i, 5 + i);
        quoted(g, base_name(dirs[i]));
    }
    fprintf(g, "\nset key top right box opaque\nset title '%s loss'\nset ylabel 'loss'\nplot ", which);
    for (int i = 0; i < n; i++) {
        fprintf(g, "%s$r%d using 1:3 with linespoints lw 2 pt %d title ", i ? ", " : "", i, 5 + i);
        quoted(g, base_name(dirs[i]));
    }
    fputs("\nunset multiplot\n", g);
    rc = gnuplot_close(g, png, err, errlen);
done:
    for (int i = 0; i < n; i++)
        table_free(&t[i]);
    free(t);
    return rc;
}
