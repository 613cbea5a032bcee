// System headers that Swift's Glibc module does not export (epoll, eventfd). Nothing else:
// this target only makes them visible to Swift.
#pragma once

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
