/* Arena planning: offsets for tensors from their lifetimes, so that tensors alive at the same
 * time never overlap and the arena is as small as a greedy plan finds. Written over a graph of
 * tensors (any producer, any number of readers), not over a chain. */
#ifndef CNN_MEMPLAN_H
#define CNN_MEMPLAN_H

#include <stdint.h>

/* One tensor: its bytes and the steps (indices of the operations, in execution order) that
 * write it first and read it last. It is alive from first to last, both included: the step
 * that reads its inputs writes its output at the same time. */
typedef struct cnn_plan_tensor {
    int64_t bytes;
    int first, last;
    int64_t offset; /* set by cnn_plan_arena */
} cnn_plan_tensor;

/* Sets every tensor's offset (a multiple of align, a power of two) and returns the arena's
 * size: the end of the furthest tensor, rounded up to align. Greedy by size, largest first
 * (ties: earlier first), each at the lowest offset that overlaps no tensor already placed
 * whose lifetime it shares, as TFLite Micro's greedy planner does. Returns -1 if n_tensors is
 * negative or a lifetime is backwards. */
int64_t cnn_plan_arena(cnn_plan_tensor *t, int n_tensors, int64_t align);

/* The largest sum of bytes alive at any one step: no plan can use less. */
int64_t cnn_plan_lower_bound(const cnn_plan_tensor *t, int n_tensors);

#endif
