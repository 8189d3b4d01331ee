/* What the test firmware's startup gives its main: output and exit through semihosting. */
#ifndef M4_H
#define M4_H

void m4_write(const char *text);
void m4_exit(int ok);

#endif
