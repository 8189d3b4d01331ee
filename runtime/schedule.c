/* Learning-rate schedules, evaluated once per epoch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"

double cnn_schedule_lr(const cnn_train_cfg *cfg, int epoch)
{
    switch (cfg->schedule) {
    case CNN_SCHED_STEP:
        return cfg->lr * pow(cfg->sched_factor, (double)(epoch / cfg->sched_every));
    case CNN_SCHED_EXPONENTIAL:
        return cfg->lr * pow(cfg->sched_factor, (double)epoch / cfg->sched_every);
    case CNN_SCHED_COSINE: {
        double progress = cfg->epochs > 0 ? (double)epoch / cfg->epochs : 0.0;
        double cosine = 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
        return cfg->lr * ((1.0 - cfg->sched_alpha) * cosine + cfg->sched_alpha);
    }
    case CNN_SCHED_CONSTANT:
        break;
    }
    return cfg->lr;
}

int cnn_schedule_parse(cnn_train_cfg *cfg, const char *text)
{
    static const char *const names[] = {"constant", "step", "exponential", "cosine"};
    cnn_train_cfg c = *cfg;
    size_t len = strcspn(text, ":");
    int kind = -1;
    for (int k = 0; k < 4; k++)
        if (strlen(names[k]) == len && strncmp(text, names[k], len) == 0)
            kind = k;
    if (kind < 0)
        return -1;
    c.schedule = (cnn_sched_kind)kind;
    c.sched_every = kind == CNN_SCHED_STEP ? 5 : 1;
    c.sched_factor = kind == CNN_SCHED_STEP ? 0.5 : 0.9;
    c.sched_alpha = 0;
    double v[2];
    int n = 0;
    const char *p = text + len;
    while (*p == ':' && n < 2) {
        char *end;
        v[n] = strtod(p + 1, &end);
        if (end == p + 1)
            return -1;
        n++;
        p = end;
    }
    if (*p)
        return -1;
    /* step:EVERY:FACTOR, exponential:RATE:EVERY, cosine:ALPHA */
    if (kind == CNN_SCHED_CONSTANT && n > 0)
        return -1;
    if (kind == CNN_SCHED_COSINE && (n > 1 || (n == 1 && (v[0] < 0 || v[0] > 1))))
        return -1;
    if (kind == CNN_SCHED_STEP || kind == CNN_SCHED_EXPONENTIAL) {
        double every = kind == CNN_SCHED_STEP ? (n > 0 ? v[0] : 5) : (n > 1 ? v[1] : 1);
        double factor = kind == CNN_SCHED_STEP ? (n > 1 ? v[1] : 0.5) : (n > 0 ? v[0] : 0.9);
        if (every < 1 || every != (int)every || !(factor > 0 && factor <= 1))
            return -1;
        c.sched_every = (int)every;
        c.sched_factor = factor;
    }
    if (kind == CNN_SCHED_COSINE && n == 1)
        c.sched_alpha = v[0];
    *cfg = c;
    return 0;
}
