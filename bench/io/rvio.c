// rvio: a tiny I/O benchmark for the bench/io guests (busybox has no fio).
// Built static (gcc -O2 -static -pthread) and put into the bench initramfs;
// the TCP modes also run on the test host (L1) as the other end.
//
//   rvio seqread  -f DEV [-b BS] [-n BYTES]            O_DIRECT sequential read from offset 0
//   rvio seqwrite -f DEV [-b BS] [-n BYTES]            O_DIRECT sequential write, then fsync
//   rvio randread -f DEV [-b BS] [-t SECS] [-j QD] [-s SPAN]
//                                                      O_DIRECT random reads by QD threads for SECS
//   rvio fill     -f FILE -n BYTES                     write a non-zero pattern (no holes), fsync
//   rvio spin     [-t SECS]                            busy CPU loop, no I/O (a baseline for exit counts)
//   rvio tcpsend  -a IP:PORT -n BYTES                  connect, send BYTES, half-close, wait for EOF
//   rvio tcprecv  -a IP:PORT                           connect, read until EOF
//   rvio tcpsink  -a IP:PORT                           listen, accept one, read until EOF
//   rvio tcpsource -a IP:PORT -n BYTES                 listen, accept one, send BYTES, close
//
// Sizes accept K/M/G suffixes (binary). Each run prints one line:
//   RVIO op=randread bs=4096 qd=8 bytes=... ios=... seconds=... mbps=... iops=...
// (mbps = 10^6 bytes per second). The sequential modes add thp_kb=: their
// buffer is a 2 MiB-aligned transparent huge page where the guest kernel
// grants one, so a 1 MiB O_DIRECT request is physically contiguous and the
// guest splits it the same way whatever VMM it runs on. (With scattered
// 4 KiB pages the count of requests per MiB depends on the page
// allocator's luck: libata's 128-entry PRD limit turns 256 pages into 2 or
// more ATA commands, and the split varied from boot to boot.) Errors go to stderr, exit status 1.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

static const char *op, *file, *addr;
static uint64_t bs = 1 << 20, nbytes = 256ull << 20, span;
static double secs = 10;
static int qd = 1;

static void die(const char *what) {
    fprintf(stderr, "rvio %s: %s: %s\n", op ? op : "", what, strerror(errno));
    exit(1);
}
static void usage(void) {
    fprintf(stderr, "usage: rvio seqread|seqwrite|randread|fill|spin|tcpsend|tcprecv|tcpsink|tcpsource "
                    "[-f FILE] [-a IP:PORT] [-b BS] [-n BYTES] [-t SECS] [-j QD] [-s SPAN]\n");
    exit(2);
}
static uint64_t parse_size(const char *s) {
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    switch (*end) {
        case 'k': case 'K': v <<= 10; end++; break;
        case 'm': case 'M': v <<= 20; end++; break;
        case 'g': case 'G': v <<= 30; end++; break;
    }
    if (end == s || *end) { fprintf(stderr, "rvio: bad size '%s'\n", s); exit(2); }
    return v;
}
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void *aligned(uint64_t size, int fillbyte) {
    void *p;
    int err = posix_memalign(&p, 4096, size);
    if (err) { errno = err; die("posix_memalign"); }
    memset(p, fillbyte, size);
    return p;
}
// A buffer of `size` bytes backed by transparent huge pages when the kernel
// has them (THP "always" or "madvise"); *thp_kb says how much of it is.
#define HUGE_PAGE (2ull << 20)
static void *huge_aligned(uint64_t size, int fillbyte, uint64_t *thp_kb) {
    uint64_t len = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) die("mmap");
    char *p = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    (void)madvise(p, len, MADV_HUGEPAGE);  // absent THP support is not an error
    memset(p, fillbyte, size);
    *thp_kb = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f) {
        char line[256];
        int ours = 0;
        while (fgets(line, sizeof line, f)) {
            unsigned long lo, hi, kb;
            if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
                ours = lo <= (uintptr_t)p && (uintptr_t)p < hi;
            else if (ours && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
                *thp_kb += kb;
        }
        fclose(f);
    }
    return p;
}
static uint64_t dev_size(int fd) {
    struct stat st;
    if (fstat(fd, &st)) die("fstat");
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz;
        if (ioctl(fd, BLKGETSIZE64, &sz)) die("BLKGETSIZE64");
        return sz;
    }
    return st.st_size;
}
static char report_extra[64];  // more fields for the RVIO line
static void report(uint64_t bytes, uint64_t ios, double t) {
    printf("RVIO op=%s bs=%" PRIu64 " qd=%d bytes=%" PRIu64 " ios=%" PRIu64
           " seconds=%.4f mbps=%.2f iops=%.1f%s\n",
           op, bs, qd, bytes, ios, t, bytes / t / 1e6, ios / t, report_extra);
    fflush(stdout);
}

// ---- block -----------------------------------------------------------------

static void seq(int writing) {
    int fd = open(file, (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0) die(file);
    uint64_t size = dev_size(fd);
    if (nbytes > size) nbytes = size - size % bs;
    uint64_t thp_kb;
    char *buf = huge_aligned(bs, 0xa5, &thp_kb);
    uint64_t done = 0, ios = 0;
    double t0 = now();
    while (done < nbytes) {
        uint64_t len = nbytes - done < bs ? nbytes - done : bs;
        if (writing) memcpy(buf, &done, sizeof done);  // a different block each time
        ssize_t r = writing ? pwrite(fd, buf, len, done) : pread(fd, buf, len, done);
        if (r < 0) die(writing ? "pwrite" : "pread");
        if (r == 0) break;
        done += r;
        ios++;
    }
    if (writing && fsync(fd)) die("fsync");
    snprintf(report_extra, sizeof report_extra, " thp_kb=%" PRIu64, thp_kb);
    report(done, ios, now() - t0);
    close(fd);
}

static atomic_int stop;
struct worker { int fd; uint64_t seed, blocks, ios; };

static void *rand_worker(void *arg) {
    struct worker *w = arg;
    char *buf = aligned(bs, 0);
    uint64_t x = w->seed | 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;  // xorshift64
        if (pread(w->fd, buf, bs, (x % w->blocks) * bs) != (ssize_t)bs) die("pread");
        w->ios++;
    }
    free(buf);
    return NULL;
}

static void randread(void) {
    int fd = open(file, O_RDONLY | O_DIRECT);
    if (fd < 0) die(file);
    uint64_t size = dev_size(fd);
    if (!span || span > size) span = size;
    struct worker w[qd];
    pthread_t th[qd];
    double t0 = now();
    for (int i = 0; i < qd; i++) {
        w[i] = (struct worker){fd, 0x9e3779b97f4a7c15ull * (i + 1) ^ (uint64_t)(t0 * 1e9), span / bs, 0};
        if ((errno = pthread_create(&th[i], NULL, rand_worker, &w[i]))) die("pthread_create");
    }
    struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
    atomic_store(&stop, 1);
    uint64_t ios = 0;
    for (int i = 0; i < qd; i++) { pthread_join(th[i], NULL); ios += w[i].ios; }
    report(ios * bs, ios, now() - t0);
    close(fd);
}

static void fill(void) {
    int fd = open(file, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) die(file);
    bs = 1 << 20;
    uint64_t *buf = aligned(bs, 0);
    double t0 = now();
    uint64_t done = 0, ios = 0;
    for (; done < nbytes; done += bs, ios++) {
        for (size_t i = 0; i < bs / 8; i++) buf[i] = (done + i * 8) * 0x9e3779b97f4a7c15ull | 1;
        uint64_t len = nbytes - done < bs ? nbytes - done : bs;
        if (pwrite(fd, buf, len, done) != (ssize_t)len) die("pwrite");
    }
    if (fsync(fd)) die("fsync");
    report(nbytes, ios, now() - t0);
    close(fd);
}

static void spin(void) {
    double t0 = now(), t;
    uint64_t loops = 0;
    volatile uint64_t x = 0;
    do {
        for (int i = 0; i < 100000; i++) x += i;
        loops++;
    } while ((t = now()) - t0 < secs);
    report(0, loops, t - t0);
}

// ---- TCP -------------------------------------------------------------------

static struct sockaddr_in parse_addr(void) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon - addr >= (long)sizeof host) usage();
    memcpy(host, addr, colon - addr);
    host[colon - addr] = 0;
    sa.sin_port = htons(atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "rvio: bad address %s\n", addr); exit(2); }
    return sa;
}
static int tcp_connect(void) {
    struct sockaddr_in sa = parse_addr();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    for (int tries = 0; connect(fd, (struct sockaddr *)&sa, sizeof sa); tries++) {
        if (tries >= 100 || errno != ECONNREFUSED) die("connect");
        usleep(100000);  // the listener may not be up yet
    }
    return fd;
}
static int tcp_accept(void) {
    struct sockaddr_in sa = parse_addr();
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (lfd < 0) die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa)) die("bind");
    if (listen(lfd, 1)) die("listen");
    fprintf(stderr, "rvio %s: listening on %s\n", op, addr);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    close(lfd);
    return fd;
}
static void tcp_send(int fd, int wait_eof) {
    char *buf = aligned(bs, 0x5a);
    uint64_t done = 0, ios = 0;
    double t0 = now();
    while (done < nbytes) {
        size_t len = nbytes - done < bs ? nbytes - done : bs;
        ssize_t r = write(fd, buf, len);
        if (r < 0) { if (errno == EINTR) continue; die("write"); }
        done += r;
        ios++;
    }
    if (shutdown(fd, SHUT_WR)) die("shutdown");
    if (wait_eof)  // the peer closes after it has read everything
        while (read(fd, buf, bs) > 0) {}
    report(done, ios, now() - t0);
    close(fd);
}
static void tcp_recv(int fd) {
    char *buf = aligned(bs, 0);
    uint64_t done = 0, ios = 0;
    double t0 = 0;
    for (;;) {
        ssize_t r = read(fd, buf, bs);
        if (r < 0) { if (errno == EINTR) continue; die("read"); }
        if (r == 0) break;
        if (!done) t0 = now();  // the sink measures from the first byte
        done += r;
        ios++;
    }
    report(done, ios, now() - t0);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    op = argv[1];
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "f:a:b:n:t:j:s:")) != -1) {
        switch (c) {
            case 'f': file = optarg; break;
            case 'a': addr = optarg; break;
            case 'b': bs = parse_size(optarg); break;
            case 'n': nbytes = parse_size(optarg); break;
            case 't': secs = atof(optarg); break;
            case 'j': qd = atoi(optarg); break;
            case 's': span = parse_size(optarg); break;
            default: usage();
        }
    }
    if (!bs || qd < 1 || qd > 256 || secs <= 0) usage();
    if (!strcmp(op, "seqread") || !strcmp(op, "seqwrite") || !strcmp(op, "randread") || !strcmp(op, "fill"))
        if (!file) usage();
    if (!strcmp(op, "seqread")) seq(0);
    else if (!strcmp(op, "seqwrite")) seq(1);
    else if (!strcmp(op, "randread")) randread();
    else if (!strcmp(op, "fill")) fill();
    else if (!strcmp(op, "spin")) spin();
    else if (!strcmp(op, "tcpsend")) tcp_send(tcp_connect(), 1);
    else if (!strcmp(op, "tcprecv")) { bs = 256 << 10; tcp_recv(tcp_connect()); }
    else if (!strcmp(op, "tcpsink")) { bs = 256 << 10; tcp_recv(tcp_accept()); }
    else if (!strcmp(op, "tcpsource")) { bs = 256 << 10; tcp_send(tcp_accept(), 0); }
    else usage();
    return 0;
}
