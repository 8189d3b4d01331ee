/* Runs a command and prints its peak resident memory (the child's maximum RSS) in MB.
 * usage: peak_rss COMMAND [ARGS...] */
/* wait4() is BSD, not POSIX. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t pid = fork();
    if (pid == 0) {
        /* Its output would only clutter the benchmark's. */
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
        return 1;
    printf("peak_rss_mb %.1f\n", ru.ru_maxrss / 1024.0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
