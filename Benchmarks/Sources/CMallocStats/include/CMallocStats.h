#pragma once
#include <stddef.h>

/// Bytes of heap in use (glibc's mallinfo2().uordblks), or 0 where there is no mallinfo2.
size_t cmallocstats_heap_in_use(void);
