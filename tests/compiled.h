/* Generated code built at test time as a user builds it, and loaded into the test. */
#ifndef CNN_TEST_COMPILED_H
#define CNN_TEST_COMPILED_H

#include "cnnrt.h"

/* cnnc NET -o DIR/NAME.c --batch BATCH, checked warning-free by the other of gcc and clang
 * (where it is installed) and built by this one into a shared object with the project's flags
 * and -pedantic, then loaded: *so gets the handle (dlclose it), the return value NAME_model().
 * Fails the current test on any error. The test executable must export libcnnrt's symbols
 * (ENABLE_EXPORTS). */
cnn_model *compiled_load(const char *net, const char *dir, const char *name, int batch,
                         void **so);

#endif
