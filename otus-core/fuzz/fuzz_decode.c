/* Fuzz harness of the C decoder entry points (otus_decode, otus_decoder_tick, the reassembler,
 * classification, otus_detect_sip).
 *
 * Input format: byte 0 = option bits (tunnels, reassembly, tiny limits), then records of
 * [linktype selector:1][length:2 big-endian][frame bytes]. All frames of one input form one
 * batch in an exactly sized heap buffer, so AddressSanitizer catches any read past its end.
 *
 * Built two ways (see Makefile and docs/decoder.md):
 *   - libFuzzer (clang -fsanitize=fuzzer,address -DOTUS_LIBFUZZER);
 *   - a standalone ASan/UBSan driver (gcc) that mutates a seed corpus for N seconds:
 *       ./fuzz_decode SECONDS CORPUS_DIR [SEED]
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"

static const uint16_t LINKTYPES[] = {1, 1, 1, 1, 101, 228, 229, 113, 276, 0, 108, 147};
#define N_LT (sizeof LINKTYPES / sizeof LINKTYPES[0])
#define MAX_PKTS 256

static otus_decoder_t *make_decoder(uint8_t opt) {
    otus_dec_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vxlan = !(opt & 1);
    cfg.geneve = !(opt & 2);
    cfg.gre = !(opt & 4);
    cfg.erspan = !(opt & 8);
    cfg.ipip = !(opt & 16);
    cfg.reassembly = !(opt & 32);
    cfg.n_vxlan_ports = 1;
    cfg.vxlan_ports[0] = 4789;
    cfg.n_geneve_ports = 1;
    cfg.geneve_ports[0] = 6081;
    cfg.frag_timeout_ns = 30000000000LL;
    /* small limits half of the time, to exercise eviction paths */
    cfg.frag_max_datagrams = (opt & 64) ? 2 : 4096;
    cfg.frag_max_fragments = (opt & 64) ? 3 : 64;
    cfg.frag_max_size = (opt & 64) ? 600 : 65535;
    cfg.frag_max_memory = (opt & 128) ? 3000 : 32u << 20;
    otus_decoder_t *d = otus_decoder_new(&cfg);
    uint16_t sip_ports[] = {5060, 5061};
    otus_decoder_add_interest(d, OTUS_T_UDP | OTUS_T_TCP, OTUS_DET_SIP, sip_ports, 2, NULL, NULL, 0);
    const uint8_t pre[] = {0x80, 0x00, 'G', 'E', 'T'};
    const uint32_t lens[] = {2, 3};
    otus_decoder_add_interest(d, OTUS_T_UDP | OTUS_T_SCTP, OTUS_DET_NONE, NULL, 0, pre, lens, 2);
    otus_decoder_add_interest(d, OTUS_T_SCTP | OTUS_T_TCP, OTUS_DET_NONE, NULL, 0, NULL, NULL, 0);
    return d;
}

static void run_one(otus_decoder_t *d, const uint8_t *data, size_t size) {
    otus_pkt_t pkts[MAX_PKTS];
    uint32_t n = 0;
    size_t pos = 1, total = 0;
    /* first pass: descriptors */
    while (pos + 3 <= size && n < MAX_PKTS) {
        uint32_t len = (uint32_t)data[pos + 1] << 8 | data[pos + 2];
        if (len > size - pos - 3) len = (uint32_t)(size - pos - 3);
        memset(&pkts[n], 0, sizeof pkts[n]);
        pkts[n].ts_ns = 1000000000LL + (int64_t)n * 1000;
        pkts[n].offset = (uint32_t)total;
        pkts[n].caplen = len;
        pkts[n].wirelen = len;
        pkts[n].linktype = LINKTYPES[data[pos] % N_LT];
        if (data[pos] & 0x80) {
            pkts[n].flags = OTUS_PKT_FLAG_VLAN;
            pkts[n].vlan_tci = data[pos];
        }
        if ((data[pos] & 0x70) == 0x70) pkts[n].caplen += 3; /* lies about caplen */
        total += len;
        pos += 3 + len;
        n++;
    }
    uint8_t *buf = malloc(total ? total : 1);
    pos = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)data[pos + 1] << 8 | data[pos + 2];
        if (len > size - pos - 3) len = (uint32_t)(size - pos - 3);
        memcpy(buf + pkts[i].offset, data + pos + 3, len);
        pos += 3 + len;
    }
    uint32_t cap = 2 * n + 16;
    otus_dec_t *out = malloc(cap * sizeof *out);
    int32_t *idx = malloc(3 * cap * sizeof *idx);
    uint32_t counts[OTUS_MAX_INTERESTS];
    uint32_t m = otus_decode(d, buf, total, pkts, n, out, cap, idx, cap, counts);
    /* every payload span must lie inside its buffer */
    uint64_t alen = 0;
    uint8_t *arena = otus_decoder_take_arena(d, &alen);
    for (uint32_t i = 0; i < m; i++) {
        uint64_t lim = out[i].buf ? alen : total;
        if (out[i].status == OTUS_ST_OK && (uint64_t)out[i].payload_offset + out[i].payload_len > lim) {
            fprintf(stderr, "payload span outside buffer at entry %u\n", i);
            abort();
        }
        if (out[i].status == OTUS_ST_OK && out[i].payload_len)
            (void)otus_detect_sip((out[i].buf ? arena : buf) + out[i].payload_offset, out[i].payload_len);
    }
    for (uint32_t k = 0; k < 3; k++)
        for (uint32_t j = 0; j < counts[k]; j++)
            if (idx[k * cap + j] < 0 || (uint32_t)idx[k * cap + j] >= m) abort();
    otus_arena_free(arena);
    free(idx);
    free(out);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    otus_decoder_t *d = make_decoder(data[0]);
    run_one(d, data, size);
    otus_decoder_tick(d, 1000000000LL + 31000000000LL);
    uint64_t st[128];
    otus_decoder_stats(d, st, otus_decoder_stat_count() < 128 ? otus_decoder_stat_count() : 128);
    otus_decoder_free(d);
    return 0;
}

#ifndef OTUS_LIBFUZZER
/* ---- standalone driver: mutate seeds for a bounded time ----------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

typedef struct { uint8_t *p; size_t n; } blob_t;

static size_t load_corpus(const char *dir, blob_t *seeds, size_t max) {
    DIR *dp = opendir(dir);
    size_t n = 0;
    if (!dp) return 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(dp)) && n < max) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        if (sz > 0 && sz < (1 << 20)) {
            seeds[n].p = malloc((size_t)sz);
            seeds[n].n = fread(seeds[n].p, 1, (size_t)sz, f);
            n++;
        }
        fclose(f);
    }
    closedir(dp);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SECONDS CORPUS_DIR [SEED]\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[1]);
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : (uint64_t)time(NULL);
    if (!rng_state) rng_state = 1;
    static blob_t seeds[4096];
    size_t ns = load_corpus(argv[2], seeds, 4096);
    if (!ns) {
        fprintf(stderr, "no seeds in %s\n", argv[2]);
        return 2;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t runs = 0;
    uint8_t *work = malloc(1 << 17);
    for (;;) {
        blob_t *s = &seeds[rnd() % ns];
        size_t n = s->n < (1 << 16) ? s->n : (1 << 16);
        memcpy(work, s->p, n);
        uint32_t muts = 1 + rnd() % 8;
        for (uint32_t i = 0; i < muts && n > 0; i++) {
            switch (rnd() % 6) {
            case 0: work[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: work[rnd() % n] = (uint8_t)rnd(); break;
            case 2: n = 1 + rnd() % n; break; /* truncate the input */
            case 3: { size_t at = rnd() % n; work[at] = (uint8_t)(rnd() % 2 ? 0xff : 0); break; }
            case 4: { /* splice bytes from another seed */
                blob_t *o = &seeds[rnd() % ns];
                size_t a = rnd() % n, b = rnd() % o->n, l = rnd() % 64;
                if (a + l > n) l = n - a;
                if (b + l > o->n) l = o->n - b;
                memcpy(work + a, o->p + b, l);
                break;
            }
            default: work[0] = (uint8_t)rnd(); break;
            }
        }
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, work, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        runs++;
        if ((runs & 255) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds) break;
        }
    }
    printf("fuzz_decode: %llu runs, %zu seeds, no crash\n", (unsigned long long)runs, ns);
    for (size_t i = 0; i < ns; i++) free(seeds[i].p);
    free(work);
    return 0;
}
#endif
