#define _GNU_SOURCE
#include "CSpoolShims.h"

#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>

int cspool_flock(int fd, int operation) { return flock(fd, operation); }

size_t cspool_malloc_usable_size(void *pointer) { return malloc_usable_size(pointer); }

int cspool_set_current_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = '\0';
    return pthread_setname_np(pthread_self(), truncated);
}

long cspool_getrandom(void *buffer, size_t length) { return (long)getrandom(buffer, length, 0); }
