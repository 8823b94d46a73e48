/*
 * Petrel benchmark shim -- NOT part of librdkafka.  See rd.h for why.
 * rd_clock(): monotonic clock in microseconds, as rdkafka_performance.c
 * expects (it is used for intervals and throughput, never as wall time).
 */
#ifndef PETREL_RDKAFKA_SHIM_RDTIME_H
#define PETREL_RDKAFKA_SHIM_RDTIME_H

#include <stdint.h>
#include <time.h>

typedef int64_t rd_ts_t;

static inline rd_ts_t rd_clock(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ((rd_ts_t)ts.tv_sec * 1000000) + (rd_ts_t)(ts.tv_nsec / 1000);
}

#endif
