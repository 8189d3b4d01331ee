/* What a run writes for people and tools: CSV and JSON logs, confusion matrices, summaries. */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

int cnn_mkdirs(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

FILE *cnn_log_open(const char *prog, const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "%s: error: cannot write %s: %s\n", prog, path, strerror(errno));
    return f;
}

int cnn_log_check(const char *prog, FILE *f, const char *dir, const char *name)
{
    if (fflush(f) == 0 && !ferror(f))
        return 0;
    fprintf(stderr, "%s: error: cannot write %s/%s: %s\n", prog, dir, name,
            strerror(errno ? errno : EIO));
    return -1;
}

int cnn_log_close(const char *prog, FILE *f, const char *dir, const char *name)
{
    if (!f)
        return 0;
    int rc = cnn_log_check(prog, f, dir, name);
    errno = 0;
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "%s: error: cannot write %s/%s: %s\n", prog, dir, name,
                strerror(errno ? errno : EIO));
        rc = -1;
    }
    return rc;
}

void cnn_write_epoch_csv_header(FILE *f)
{
    fputs("epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n", f);
    fflush(f);
}

void cnn_write_epoch_csv(FILE *f, const cnn_epoch_stats *s, int classifier)
{
    /* Accuracy is left empty where there is none (loss mse). */
    fprintf(f, "%d,%.9g,%.6f,", s->epoch, s->lr, s->train.loss);
    if (classifier)
        fprintf(f, "%.6f", s->train.accuracy);
    fputc(',', f);
    if (s->val.n > 0 && classifier)
        fprintf(f, "%.6f,%.6f,", s->val.loss, s->val.accuracy);
    else if (s->val.n > 0)
        fprintf(f, "%.6f,,", s->val.loss);
    else
        fputs(",,", f);
    fprintf(f, "%.3f\n", s->seconds);
    fflush(f);
}

static long row_total(const long *counts, int k, int row)
{
    long t = 0;
    for (int j = 0; j < k; j++)
        t += counts[row * k + j];
    return t;
}

void cnn_print_confusion(FILE *out, const long *counts, int k, const char *const *names)
{
    fprintf(out, "confusion matrix (rows: true class, columns: predicted class)\n%14s", "");
    for (int j = 0; j < k; j++)
        fprintf(out, " %7.7s", names[j]);
    fputc('\n', out);
    for (int i = 0; i < k; i++) {
        fprintf(out, "%-14.14s", names[i]);
        for (int j = 0; j < k; j++)
            fprintf(out, " %7ld", counts[i * k + j]);
        fputc('\n', out);
    }
    fputs("accuracy per class:", out);
    for (int i = 0; i < k; i++) {
        long t = row_total(counts, k, i);
        fprintf(out, "%s %s %.3f", i ? "," : "", names[i], t ? (double)counts[i * k + i] / t : 0.0);
    }
    fputc('\n', out);
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void cnn_write_confusion_csv(FILE *f, const long *counts, int k, const char *const *names)
{
    fputs("true\\predicted", f);
    for (int j = 0; j < k; j++) {
        fputc(',', f);
        csv_field(f, names[j]);
    }
    fputc('\n', f);
    for (int i = 0; i < k; i++) {
        csv_field(f, names[i]);
        for (int j = 0; j < k; j++)
            fprintf(f, ",%ld", counts[i * k + j]);
        fputc('\n', f);
    }
}

void cnn_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void cnn_json_eval(FILE *f, const cnn_eval *e)
{
    if (isnan(e->accuracy)) /* loss mse: no accuracy */
        fprintf(f, "{\"loss\": %.6f, \"images\": %d}", e->loss, e->n);
    else
        fprintf(f, "{\"loss\": %.6f, \"accuracy\": %.6f, \"images\": %d}", e->loss,
                e->accuracy, e->n);
}

void cnn_json_confusion(FILE *f, const long *counts, int k, const char *const *names)
{
    fputs("{\"classes\": [", f);
    for (int i = 0; i < k; i++) {
        fputs(i ? ", " : "", f);
        cnn_json_string(f, names[i]);
    }
    fputs("], \"counts\": [", f);
    for (int i = 0; i < k; i++) {
        fputs(i ? ", [" : "[", f);
        for (int j = 0; j < k; j++)
            fprintf(f, "%s%ld", j ? ", " : "", counts[i * k + j]);
        fputc(']', f);
    }
    fputs("], \"per_class_accuracy\": [", f);
    for (int i = 0; i < k; i++) {
        long t = row_total(counts, k, i);
        fprintf(f, "%s%.6f", i ? ", " : "", t ? (double)counts[i * k + i] / t : 0.0);
    }
    fputs("]}", f);
}
