/*
 * Petrel benchmark shim -- NOT part of librdkafka.
 *
 * Debian's librdkafka-dev ships examples/rdkafka_performance.c, which is
 * written to build inside the librdkafka source tree and includes the
 * library's private headers ("../src/rd.h", "rd.h", "rdtime.h").  Those are
 * not installed, so this file provides only the handful of helpers the
 * example actually uses:
 *   rd_ts_t, rd_clock()        (rdtime.h)
 *   RD_MIN, RD_MAX, rd_snprintf and the usual libc/POSIX headers (rd.h)
 *
 * Build with -I<this src dir> so that both "../src/rd.h" and "rd.h"
 * resolve here (see Benchmarks/Drivers/build-rdkafka-performance.sh).
 */
#ifndef PETREL_RDKAFKA_SHIM_RD_H
#define PETREL_RDKAFKA_SHIM_RD_H

/* Empty body on purpose: rdkafka_performance.c re-defines it identically
 * after including us, and it must be set before any libc header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <inttypes.h> /* PRIu64, SCNd64 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h> /* gettimeofday() */
#include <sys/types.h>
#include <time.h>
#include <unistd.h> /* getopt(), usleep() */

#define RD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RD_MAX(a, b) ((a) > (b) ? (a) : (b))

#define rd_snprintf snprintf

#include "rdtime.h"

#endif
