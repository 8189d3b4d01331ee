/* Learning-rate schedules, evaluated once per epoch. */
#include <math.h>

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
