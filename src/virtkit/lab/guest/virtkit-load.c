/*
 * virtkit-load: the memory loads of virtkit's lab test guest, started by its /init (virtkit/lab/guest/init).
 *
 *   virtkit-load dirty <MiB> <pattern|counter> <report-seconds>   (0: no pass-count lines)
 *   virtkit-load fill <MiB> <check-seconds>
 *
 * Either way the program forks: the child runs the load for ever, the parent exits 0 once the child has started
 * (dirty: its memory written once and its DIRTY line said; fill: its memory mapped), or 1 when it could not. Init
 * runs it in the foreground, so a DIRTY line comes before the boot marker, as it always did.
 *
 * dirty: <MiB> of anonymous memory rewritten from start to end, again and again, as fast as the vCPU goes. Word i
 * of the region (8 bytes) holds key ^ (i * WEYL), where
 *   pattern: key is the same on every pass, so every pass writes the same bytes again: pages are dirtied but the
 *            data does not change (XBZRLE sends each page as an empty delta);
 *   counter: key comes from the pass counter and differs from the previous pass's key in all 8 bytes, so every
 *            pass changes every byte of every page: XBZRLE's delta is the whole page, which it does not send as a
 *            delta at all, and the data is not compressible either.
 * Both modes cost the vCPU the same per pass. No page is ever all zeros (QEMU sends zero pages as a flag).
 *
 * fill: <MiB> of anonymous memory filled once, page p with the xorshift64 sequence seeded from p (different in
 * every page, not compressible), then every <check-seconds> every page is compared with the formula again.
 *
 * Lines on stdout (init points it at the serial port), each with a single write(2), parsed by virtkit.lab.serial:
 *   VIRTKIT-DIRTY uptime=<s> mib=<n> mode=<m>             once, when the load runs
 *   VIRTKIT-DIRTY uptime=<s> mib=<n> mode=<m> passes=<k>  every <report-seconds>: passes written since the start
 *   VIRTKIT-FILL uptime=<s> filled mib=<n>                once, when the memory is filled
 *   VIRTKIT-FILL uptime=<s> ok pass=<k>                   check number k (from 1) found every page intact
 *   VIRTKIT-FILL uptime=<s> bad=<pages> pass=<k>          check number k found that many pages changed
 * Errors go to stderr, starting with "virtkit-load: ". The child asks the OOM killer to take it first: a load
 * too big for the guest's memory must never cost PID 1 its life.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MIB (1UL << 20) /* 1 TiB: anything bigger is a typo */
#define WEYL 0x9e3779b97f4a7c15ULL
#define FILL_SALT 0x7669727466696c6cULL /* "virtfill" */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static int ready_fd = -1; /* the pipe to the waiting parent, until the child is ready */

static void uptime(char *out, size_t size) {
    char buf[64];
    ssize_t n = -1;
    int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    size_t len = 0;
    if (n > 0) {
        while (len < (size_t)n && len + 1 < size && (buf[len] == '.' || (buf[len] >= '0' && buf[len] <= '9')))
            len++;
        memcpy(out, buf, len);
    }
    if (len == 0)
        out[len++] = '0';
    out[len] = '\0';
}

static void write_all(int fd, const char *buf, size_t len) {
    while (len > 0) { /* one write(2) unless the kernel takes less, which a tty does not */
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* "VIRTKIT-<kind> uptime=<s> <rest>\n" on stdout, in one write. */
static void say(const char *kind, const char *fmt, ...) {
    char up[32], line[256];
    uptime(up, sizeof up);
    int len = snprintf(line, sizeof line, "VIRTKIT-%s uptime=%s ", kind, up);
    va_list ap;
    va_start(ap, fmt);
    len += vsnprintf(line + len, sizeof line - (size_t)len, fmt, ap);
    va_end(ap);
    if (len > (int)sizeof line - 2)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    write_all(STDOUT_FILENO, line, (size_t)len);
}

static void fail(const char *fmt, ...) {
    char line[256] = "virtkit-load: ";
    size_t len = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + len, sizeof line - len, fmt, ap);
    va_end(ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    write_all(STDERR_FILENO, line, len);
    exit(1);
}

static unsigned long number(const char *what, const char *text, unsigned long max, int zero_ok) {
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || value > max || (value == 0 && !zero_ok))
        fail("%s must be a whole number from %d to %lu, got '%s'", what, zero_ok ? 0 : 1, max, text);
    return value;
}

static uint64_t splitmix64(uint64_t x) {
    x += WEYL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int has_zero_byte(uint64_t v) {
    return ((v - ONES) & ~v & HIGHS) != 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double when) {
    struct timespec ts = {(time_t)when, (long)((when - (double)(time_t)when) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static uint64_t *map(unsigned long mib) {
    void *mem = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        fail("cannot map %lu MiB: %s", mib, strerror(errno));
    return mem;
}

/* Tell the waiting parent the load runs. */
static void started(void) {
    if (ready_fd >= 0) {
        write_all(ready_fd, "1", 1);
        close(ready_fd);
        ready_fd = -1;
    }
}

static void dirty(unsigned long mib, int counter, unsigned long report) {
    uint64_t *mem = map(mib);
    size_t words = (mib << 20) / sizeof *mem;
    const char *mode = counter ? "counter" : "pattern";
    uint64_t seq = 0, key = splitmix64(seq), passes = 0;
    double next = 0;
    for (;;) {
        if (counter && passes > 0) {
            uint64_t prev = key;
            do
                key = splitmix64(++seq);
            while (has_zero_byte(key ^ prev));
        }
        uint64_t weyl = 0;
        for (size_t i = 0; i < words; i++) {
            mem[i] = key ^ weyl;
            weyl += WEYL;
        }
        __asm__ volatile("" ::: "memory"); /* the stores are the point: keep every one */
        passes++;
        if (passes == 1) {
            say("DIRTY", "mib=%lu mode=%s", mib, mode);
            started();
            next = now() + (double)report;
        } else if (report > 0 && now() >= next) {
            say("DIRTY", "mib=%lu mode=%s passes=%llu", mib, mode, (unsigned long long)passes);
            next += (double)report;
            if (next <= now()) /* after a long pause: from now on, no catching up */
                next = now() + (double)report;
        }
    }
}

static void fill_page(uint64_t *page, size_t words, uint64_t index) {
    uint64_t x = splitmix64(index ^ FILL_SALT) | 1; /* xorshift64 needs a non-zero state */
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        page[i] = x;
    }
}

static int page_intact(const uint64_t *page, size_t words, uint64_t index) {
    uint64_t x = splitmix64(index ^ FILL_SALT) | 1;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (page[i] != x)
            return 0;
    }
    return 1;
}

static void fill(unsigned long mib, unsigned long check) {
    uint64_t *mem = map(mib);
    started();
    long page_size = sysconf(_SC_PAGESIZE);
    size_t words = (size_t)(page_size > 0 ? page_size : 4096) / sizeof *mem;
    size_t pages = (mib << 20) / sizeof *mem / words;
    for (size_t p = 0; p < pages; p++)
        fill_page(mem + p * words, words, p);
    say("FILL", "filled mib=%lu", mib);
    double next = now() + (double)check;
    for (unsigned long long pass = 1;; pass++) {
        sleep_until(next);
        unsigned long long bad = 0;
        for (size_t p = 0; p < pages; p++)
            bad += !page_intact(mem + p * words, words, p);
        if (bad == 0)
            say("FILL", "ok pass=%llu", pass);
        else
            say("FILL", "bad=%llu pass=%llu", bad, pass);
        next += (double)check;
        if (next <= now())
            next = now() + (double)check;
    }
}

static void usage(void) {
    fail("usage: virtkit-load dirty <MiB> <pattern|counter> <report-seconds> | fill <MiB> <check-seconds>");
}

int main(int argc, char **argv) {
    int is_dirty = argc == 5 && strcmp(argv[1], "dirty") == 0;
    int is_fill = argc == 4 && strcmp(argv[1], "fill") == 0;
    if (!is_dirty && !is_fill)
        usage();
    unsigned long mib = number("MiB", argv[2], MAX_MIB, 0);
    int counter = 0;
    unsigned long seconds;
    if (is_dirty) {
        if (strcmp(argv[3], "counter") == 0)
            counter = 1;
        else if (strcmp(argv[3], "pattern") != 0)
            fail("the dirty mode must be pattern or counter, got '%s'", argv[3]);
        seconds = number("the report period", argv[4], 86400, 1);
    } else {
        seconds = number("the check period", argv[3], 86400, 0);
    }
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        fail("cannot make a pipe: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        fail("cannot fork: %s", strerror(errno));
    if (child > 0) { /* the parent: wait until the child runs or dies */
        close(pipe_fds[1]);
        char byte;
        ssize_t n;
        while ((n = read(pipe_fds[0], &byte, 1)) < 0 && errno == EINTR) {
        }
        if (n == 1)
            return 0;
        waitpid(child, NULL, 0);
        return 1;
    }
    close(pipe_fds[0]);
    ready_fd = pipe_fds[1];
    setsid();
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) {
        write_all(oom, "1000", 4);
        close(oom);
    }
    if (is_dirty)
        dirty(mib, counter, seconds);
    else
        fill(mib, seconds);
    return 1;
}
