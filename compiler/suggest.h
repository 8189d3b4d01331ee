/* "Did you mean" for near misses among a fixed list of names. */
#ifndef CNN_SUGGEST_H
#define CNN_SUGGEST_H

/* The closest name in the NULL-terminated list, or NULL if none is close enough. */
const char *cnn_suggest(const char *word, const char *const *names);

#endif
