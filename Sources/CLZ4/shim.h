#ifndef SPOOL_CLZ4_SHIM_H
#define SPOOL_CLZ4_SHIM_H
#include <lz4.h>
#endif
