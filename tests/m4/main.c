/* The export's test firmware: the class and the probabilities' bits of each test image, one
 * line per image, for the host to compare with its own run of the same export.
 * Built with -DPREDICT_U8=NAME_predict_u8 -DCLASSES=K and images.h from the test. */
#include <stdint.h>
#include <string.h>

#include "images.h"
#include "m4.h"

int PREDICT_U8(const unsigned char *pixels, float *probabilities);

static char *hex(char *at, uint32_t v)
{
    for (int i = 7; i >= 0; i--)
        *at++ = "0123456789abcdef"[(v >> (4 * i)) & 15];
    return at;
}

int main(void)
{
    static char line[16 + 9 * CLASSES];
    float p[CLASSES];
    for (int i = 0; i < N_IMAGES; i++) {
        int top = PREDICT_U8(test_images[i], p);
        char *at = hex(line, (uint32_t)top);
        for (int k = 0; k < CLASSES; k++) {
            uint32_t bits;
            memcpy(&bits, &p[k], sizeof bits);
            *at++ = ' ';
            at = hex(at, bits);
        }
        *at++ = '\n';
        *at = '\0';
        m4_write(line);
    }
    m4_write("done\n");
    return 0;
}
