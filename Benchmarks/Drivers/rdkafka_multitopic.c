/*
 * rdkafka_multitopic: rdkafka_performance's producer and queue consumer, over many topics at once.
 *
 * rdkafka_performance (librdkafka's examples/rdkafka_performance.c) produces to one topic only and
 * its simple consumer reads one topic. bench-scale.py needs the same load spread over many topics,
 * so this program repeats rdkafka_performance's two loops with a list of topics and nothing else:
 * the same default settings (linger.ms=1000, message.send.max.retries=3, retry.backoff.ms=500,
 * queued.min.messages=1000000, auto.offset.reset=earliest, enable.partition.eof=true; -X overrides
 * them), one static payload of -s bytes produced without copy to RD_KAFKA_PARTITION_UA (the
 * configured partitioner picks the partition), the topics taken in turn record by record, a poll
 * every 1,000 records and on a full queue; the consumer starts every partition of every topic into
 * one queue and drains it with rd_kafka_consume_callback_queue. The summary lines have
 * rdkafka_performance's format, so that the same regular expressions read both:
 *
 *   % N messages produced (B bytes), D delivered (offset 0, F failed) in Tms: R msgs/s and M MB/s, ...
 *   % N messages (B bytes) consumed in Tms: R msgs/s (M MB/s)
 *
 * The producer's time runs from the first produce call to the last delivery report; the
 * consumer's from the first record received to the last one counted. Statistics are off.
 *
 * Usage: rdkafka_multitopic -P|-C -b BROKERS -t TOPIC [-t TOPIC ...] [-n PARTITIONS_PER_TOPIC]
 *                           [-s SIZE] [-c COUNT] [-a ACKS] [-o OFFSET] [-X property=value ...]
 *   -n and -o are the consumer's: it reads partitions 0..n-1 of every topic, from offset -o (a number,
 *   or `beginning`, the default).
 *
 * Built by build-rdkafka-performance.sh (RDKAFKA_PERF_SRC=<this file>), against the same librdkafka.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rdkafka.h"

static volatile sig_atomic_t run = 1;
static int64_t t_start, t_end;
static uint64_t msgs, bytes, delivered_ok, delivered_failed, bytes_delivered, wanted;
static long waiting;
static int all_produced;

static int64_t clock_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void stop(int sig) {
        (void)sig;
        run = 0;
}

static void die(const char *what, const char *why) {
        fprintf(stderr, "%% %s: %s\n", what, why);
        exit(1);
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
        (void)rk;
        (void)opaque;
        waiting--;
        if (message->err)
                delivered_failed++;
        else {
                delivered_ok++;
                bytes_delivered += message->len;
        }
        if (all_produced && waiting == 0) {
                t_end = clock_us();
                run   = 0;
        }
}

static void consumed(rd_kafka_message_t *message, void *opaque) {
        (void)opaque;
        if (message->err) {
                if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return;
                printf("%% Consume error for topic \"%s\" [%" PRId32 "] offset %" PRId64 ": %s\n",
                       message->rkt ? rd_kafka_topic_name(message->rkt) : "", message->partition,
                       message->offset, rd_kafka_message_errstr(message));
                if (message->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                    message->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
                        run = 0;
                delivered_failed++;
                return;
        }
        if (!t_start)
                t_start = clock_us();
        msgs++;
        bytes += message->len;
        if (msgs >= wanted) {
                t_end = clock_us();
                run   = 0;
        }
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value) {
        char errstr[512];
        if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
                die(name, errstr);
}

int main(int argc, char **argv) {
        char mode = 0, errstr[512];
        const char *brokers = NULL;
        const char **topics = NULL;
        int topic_count = 0, partitions = 1, size = 100, opt, i, p;
        long count = -1;
        int64_t start_offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        /* rdkafka_performance's defaults, before -X. */
        set(conf, "linger.ms", "1000");
        set(conf, "message.send.max.retries", "3");
        set(conf, "retry.backoff.ms", "500");
        set(conf, "queued.min.messages", "1000000");
        set(conf, "session.timeout.ms", "6000");
        set(conf, "auto.offset.reset", "earliest");
        set(conf, "statistics.interval.ms", "0");

        while ((opt = getopt(argc, argv, "PCb:t:n:s:c:a:o:X:")) != -1) {
                switch (opt) {
                case 'P':
                case 'C':
                        mode = (char)opt;
                        break;
                case 'b':
                        brokers = optarg;
                        break;
                case 't':
                        topics                = realloc(topics, sizeof(*topics) * (topic_count + 1));
                        topics[topic_count++] = optarg;
                        break;
                case 'n':
                        partitions = atoi(optarg);
                        break;
                case 's':
                        size = atoi(optarg);
                        break;
                case 'c':
                        count = atol(optarg);
                        break;
                case 'a':
                        set(conf, "acks", optarg);
                        break;
                case 'o':
                        start_offset = strcmp(optarg, "beginning") ? strtoll(optarg, NULL, 10) : RD_KAFKA_OFFSET_BEGINNING;
                        break;
                case 'X': {
                        char *value = strchr(optarg, '=');
                        if (!value)
                                die("expected -X property=value, not", optarg);
                        *value++ = '\0';
                        set(conf, optarg, value);
                        break;
                }
                default:
                        fprintf(stderr,
                                "usage: %s -P|-C -b BROKERS -t TOPIC [-t TOPIC ...] [-n PARTITIONS] "
                                "[-s SIZE] [-c COUNT] [-a ACKS] [-o OFFSET] [-X property=value ...]\n",
                                argv[0]);
                        return 1;
                }
        }
        if (!mode || !brokers || !topic_count || count <= 0 || size < 0 || partitions < 1)
                die("usage", "-P or -C, -b, at least one -t and -c COUNT are required");
        set(conf, "bootstrap.servers", brokers);
        signal(SIGINT, stop);
        signal(SIGTERM, stop);

        rd_kafka_t *rk;
        rd_kafka_topic_t **handles = calloc((size_t)topic_count, sizeof(*handles));
        double elapsed_ms;
        int exitcode = 0;

        if (mode == 'P') {
                char *payload = malloc(size ? (size_t)size : 1);
                const char *pattern = "librdkafka_performance testing!";
                for (i = 0; i < size; i++)
                        payload[i] = pattern[i % strlen(pattern)];
                rd_kafka_conf_set_dr_msg_cb(conf, delivered);
                if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))))
                        die("Failed to create Kafka producer", errstr);
                for (i = 0; i < topic_count; i++)
                        handles[i] = rd_kafka_topic_new(rk, topics[i], NULL);
                t_start = clock_us();
                for (long n = 0; run && n < count; n++) {
                        rd_kafka_topic_t *rkt = handles[n % topic_count];
                        while (run && rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, size ? payload : NULL,
                                                       (size_t)size, NULL, 0, NULL) == -1) {
                                rd_kafka_resp_err_t err = rd_kafka_last_error();
                                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                        printf("%% produce error: %s\n", rd_kafka_err2str(err));
                                        run = 0;
                                        break;
                                }
                                rd_kafka_poll(rk, 10);
                        }
                        if (!run)
                                break;
                        waiting++;
                        msgs++;
                        bytes += (uint64_t)size;
                        if (msgs % 1000 == 0)
                                rd_kafka_poll(rk, 0);
                }
                all_produced = 1;
                if (waiting == 0) {
                        t_end = clock_us();
                        run   = 0;
                }
                while (run)
                        rd_kafka_poll(rk, 1000);
                if (!t_end)
                        t_end = clock_us();
                int queued = rd_kafka_outq_len(rk);
                elapsed_ms = (double)(t_end - t_start) / 1000.0;
                if (elapsed_ms <= 0)
                        elapsed_ms = 0.001;
                printf("%% %" PRIu64 " messages produced (%" PRIu64 " bytes), %" PRIu64
                       " delivered (offset 0, %" PRIu64 " failed) in %" PRIu64 "ms: %" PRIu64
                       " msgs/s and %.02f MB/s, 0 produce failures, %i in queue, no compression\n",
                       msgs, bytes, delivered_ok, delivered_failed, (uint64_t)elapsed_ms,
                       (uint64_t)(delivered_ok * 1000.0 / elapsed_ms), bytes_delivered / (elapsed_ms * 1000.0),
                       queued);
                exitcode = msgs == delivered_ok ? 0 : 1;
                for (i = 0; i < topic_count; i++)
                        rd_kafka_topic_destroy(handles[i]);
                rd_kafka_destroy(rk);
                free(payload);
        } else {
                wanted = (uint64_t)count;
                set(conf, "enable.partition.eof", "true");
                if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))))
                        die("Failed to create Kafka consumer", errstr);
                rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
                for (i = 0; i < topic_count; i++) {
                        handles[i] = rd_kafka_topic_new(rk, topics[i], NULL);
                        for (p = 0; p < partitions; p++)
                                if (rd_kafka_consume_start_queue(handles[i], p, start_offset, queue) == -1)
                                        die("Error creating queue", rd_kafka_err2str(rd_kafka_last_error()));
                }
                while (run && msgs < wanted) {
                        if (rd_kafka_consume_callback_queue(queue, 1000, consumed, NULL) == -1)
                                fprintf(stderr, "%% Error: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
                        rd_kafka_poll(rk, 0);
                }
                if (!t_end)
                        t_end = clock_us();
                elapsed_ms = t_start ? (double)(t_end - t_start) / 1000.0 : 0.001;
                if (elapsed_ms <= 0)
                        elapsed_ms = 0.001;
                printf("%% %" PRIu64 " messages (%" PRIu64 " bytes) consumed in %" PRIu64 "ms: %" PRIu64
                       " msgs/s (%.02f MB/s)\n",
                       msgs, bytes, (uint64_t)elapsed_ms, (uint64_t)(msgs * 1000.0 / elapsed_ms),
                       bytes / (elapsed_ms * 1000.0));
                exitcode = msgs >= wanted ? 0 : 1;
                for (i = 0; i < topic_count; i++) {
                        for (p = 0; p < partitions; p++)
                                rd_kafka_consume_stop(handles[i], p);
                        rd_kafka_topic_destroy(handles[i]);
                }
                rd_kafka_queue_destroy(queue);
                rd_kafka_destroy(rk);
        }
        fflush(stdout);
        free(handles);
        free(topics);
        rd_kafka_wait_destroyed(2000);
        return exitcode;
}
