#define _GNU_SOURCE
#include "cthreadpriority.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int petrel_lower_thread_priority(int niceness) {
#ifdef __linux__
    pid_t thread = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, (id_t)thread);
    if (errno != 0) return -1;
    if (current >= niceness) return 0;
    return setpriority(PRIO_PROCESS, (id_t)thread, niceness);
#else
    (void)niceness;
    return 0;
#endif
}
