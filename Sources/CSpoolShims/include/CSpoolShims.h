#ifndef CSPOOLSHIMS_H
#define CSPOOLSHIMS_H

#include <stddef.h>

// The few libc functions that Swift's Glibc module does not expose in a usable form.
// Never visible in the public API of any Spool module.

/// `flock(2)`. Glibc's module exposes `flock` only as the struct of the same name.
int cspool_flock(int fd, int operation);

/// glibc's `malloc_usable_size`, declared in <malloc.h>, which the Glibc module does not export.
size_t cspool_malloc_usable_size(void *pointer);

/// Names the calling thread (at most 15 bytes are kept) with `pthread_setname_np`, which needs
/// `_GNU_SOURCE`. Returns 0 or an errno value.
int cspool_set_current_thread_name(const char *name);

/// `getrandom(2)` (flags 0: the kernel's generator, blocking only until it is first seeded),
/// declared in <sys/random.h>, which the Glibc module does not export. Returns the number of bytes
/// written or -1 with errno set.
long cspool_getrandom(void *buffer, size_t length);

#endif
