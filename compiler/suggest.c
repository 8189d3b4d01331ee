/* "Did you mean" for near misses among a fixed list of names. */
#include "suggest.h"

#include <ctype.h>
#include <string.h>

/* Case-insensitive Damerau-Levenshtein distance (optimal string alignment: an insertion, a
 * deletion, a substitution or a swap of two neighbours is one edit, so 'rleu' is one from
 * 'relu'), capped at 16 characters per side. */
static int distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 16 || lb > 16)
        return 99;
    int m[17][17];
    for (int i = 0; i <= la; i++)
        m[i][0] = i;
    for (int j = 0; j <= lb; j++)
        m[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            int best = m[i - 1][j - 1] + (ai != bj);
            if (m[i - 1][j] + 1 < best)
                best = m[i - 1][j] + 1;
            if (m[i][j - 1] + 1 < best)
                best = m[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && m[i - 2][j - 2] + 1 < best)
                best = m[i - 2][j - 2] + 1;
            m[i][j] = best;
        }
    return m[la][lb];
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
