/* "Did you mean" for near misses among a fixed list of names. */
#include "suggest.h"

#include <ctype.h>
#include <string.h>

/* Case-insensitive Levenshtein distance, capped at 16 characters per side. */
static int distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 16 || lb > 16)
        return 99;
    int row[17];
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *cnn_suggest(const char *word, const char *const *names)
{
    const char *best = NULL;
    int best_d = 99;
    int len = (int)strlen(word);
    /* A third of the word may be wrong, at least one letter, at most three. */
    int limit = len / 3 < 1 ? 1 : (len / 3 > 3 ? 3 : len / 3);
    for (const char *const *n = names; *n; n++) {
        int d = distance(word, *n);
        if (d < best_d) {
            best_d = d;
            best = *n;
        }
    }
    return best_d <= limit ? best : NULL;
}
