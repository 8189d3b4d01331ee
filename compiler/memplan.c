/* Arena planning from tensor lifetimes (memplan.h). */
#include "memplan.h"

#include <stdlib.h>

static int lives_overlap(const cnn_plan_tensor *a, const cnn_plan_tensor *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static int64_t round_up(int64_t v, int64_t align)
{
    return (v + align - 1) & ~(align - 1);
}

int64_t cnn_plan_arena(cnn_plan_tensor *t, int n, int64_t align)
{
    if (n < 0 || align < 1 || (align & (align - 1)))
        return -1;
    for (int i = 0; i < n; i++)
        if (t[i].first > t[i].last || t[i].bytes < 0)
            return -1;
    /* order[]: the placing order; placed tensors are order[0 .. k). Insertion sort: networks
     * have tens of tensors, and the sort must be stable for the plan to be reproducible. */
    int *order = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!order)
        return -1;
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && t[order[j - 1]].bytes < t[i].bytes)
            order[j] = order[j - 1], j--;
        order[j] = i;
    }
    int64_t size = 0;
    for (int k = 0; k < n; k++) {
        cnn_plan_tensor *x = &t[order[k]];
        /* Try offset 0, then the end of each conflicting placed tensor, lowest first; the
         * lowest candidate that fits is the answer (a gap between placed tensors always
         * starts at one of their ends). */
        int64_t best = -1;
        for (int c = -1; c < k; c++) {
            int64_t at = 0;
            if (c >= 0) {
                const cnn_plan_tensor *y = &t[order[c]];
                if (!lives_overlap(x, y))
                    continue;
                at = round_up(y->offset + y->bytes, align);
            }
            if (best >= 0 && at >= best)
                continue;
            int fits = 1;
            for (int o = 0; o < k && fits; o++) {
                const cnn_plan_tensor *y = &t[order[o]];
                if (lives_overlap(x, y) && at < y->offset + y->bytes && y->offset < at + x->bytes)
                    fits = 0;
            }
            if (fits)
                best = at;
        }
        x->offset = best;
        if (round_up(best + x->bytes, align) > size)
            size = round_up(best + x->bytes, align);
    }
    free(order);
    return size;
}

int64_t cnn_plan_lower_bound(const cnn_plan_tensor *t, int n)
{
    int64_t most = 0;
    for (int i = 0; i < n; i++) {
        /* The peak is reached at some tensor's first step. */
        int64_t live = 0;
        for (int j = 0; j < n; j++)
            if (t[j].first <= t[i].first && t[i].first <= t[j].last)
                live += t[j].bytes;
        if (live > most)
            most = live;
    }
    return most;
}
