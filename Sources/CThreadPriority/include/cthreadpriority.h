#ifndef PETREL_CTHREADPRIORITY_H
#define PETREL_CTHREADPRIORITY_H

/// Makes the calling thread at least `niceness` nice (Linux scheduling priority is per thread). Never
/// raises a thread's priority. Returns 0, or -1 with errno set.
int petrel_lower_thread_priority(int niceness);

#endif
