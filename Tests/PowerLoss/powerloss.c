// A power-failure model for one directory tree, loaded into a process with LD_PRELOAD.
//
// For files under $POWERLOSS_ROOT it records what each fsync made durable, in $POWERLOSS_STATE:
//   content/<id>   a file's bytes as of its last fsync or fdatasync
//   journal        one line per event, in order:
//                    D <dir id> <name>/<id>/<f|d>...   an fsync of a directory saw these entries
//                    N <dir id> <name> <id> <f|d>      a file fsync (lenient mode: its name, and its
//                                                      parents' names, are durable too, as on ext4)
// A file or directory is known by an identity, not its inode number: the restore step writes
// baseline identities "b<inode>" for what existed when it ran, and this library gives every file or
// directory the process creates a fresh one, so an inode number reused after a delete is not
// mistaken for the file that had it before. Renames need nothing: a name maps to an identity, and
// content follows the identity. The harness's powerloss.py (Tests/Harness/petrel_harness) rolls the
// tree back to what these records say is durable.
//
// Not modelled: file modes and times (a restored file gets the default mode), sync(), syncfs(),
// msync(), O_SYNC/O_DSYNC writes (the broker uses none of them: a
// call to sync or syncfs aborts the process, so a test cannot silently rely on one).
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static char root[PATH_MAX];
static size_t root_length;
static char state[PATH_MAX];
static int journal = -1;
static int enabled;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long next_identity = 1;

static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

// Identities of the files and directories created by this process, by inode number (open addressing).
struct slot { ino_t inode; unsigned long long identity; };
static struct slot *slots;
static size_t slot_count;
static size_t slot_used;

static void die(const char *what) {
    fprintf(stderr, "powerloss: %s: %s\n", what, strerror(errno));
    abort();
}

__attribute__((constructor)) static void start(void) {
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_mkdir = dlsym(RTLD_NEXT, "mkdir");
    real_mkdirat = dlsym(RTLD_NEXT, "mkdirat");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    const char *r = getenv("POWERLOSS_ROOT"), *s = getenv("POWERLOSS_STATE");
    if (!r || !s) return;
    if (!realpath(r, root)) die("POWERLOSS_ROOT");
    if (!realpath(s, state)) die("POWERLOSS_STATE");
    root_length = strlen(root);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/journal", state);
    journal = real_openat(AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (journal < 0) die(path);
    slot_count = 1 << 16;
    slots = calloc(slot_count, sizeof *slots);
    // Identities of this run start above any earlier run's, so none is ever reused.
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    next_identity = (unsigned long long)now.tv_sec * 1000000000ULL + (unsigned long long)now.tv_nsec;
    enabled = 1;
}

static int under_root(const char *path) {
    return strncmp(path, root, root_length) == 0 && (path[root_length] == '/' || path[root_length] == 0);
}

static void remember(ino_t inode, unsigned long long identity) {
    if (2 * (slot_used + 1) > slot_count) {
        struct slot *old = slots;
        size_t old_count = slot_count;
        slot_count *= 2;
        slots = calloc(slot_count, sizeof *slots);
        slot_used = 0;
        for (size_t i = 0; i < old_count; i++)
            if (old[i].inode) remember(old[i].inode, old[i].identity);
        free(old);
    }
    size_t i = (size_t)inode & (slot_count - 1);
    while (slots[i].inode && slots[i].inode != inode) i = (i + 1) & (slot_count - 1);
    if (!slots[i].inode) slot_used++;
    slots[i].inode = inode;
    slots[i].identity = identity;
}

static void identity_of(ino_t inode, char *out, size_t size) {
    size_t i = (size_t)inode & (slot_count - 1);
    while (slots[i].inode && slots[i].inode != inode) i = (i + 1) & (slot_count - 1);
    if (slots[i].inode) snprintf(out, size, "n%llu", slots[i].identity);
    else snprintf(out, size, "b%llu", (unsigned long long)inode);
}

static void append_journal(const char *line, size_t length) {
    if (write(journal, line, length) != (ssize_t)length) die("journal");
}

// A file or directory this process just created under the root gets a fresh identity.
static void created(int fd, const char *what_path) {
    char path[PATH_MAX];
    struct stat info;
    if (fd >= 0) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        if (n < 0) return;
        path[n] = 0;
        if (!under_root(path) || fstat(fd, &info) != 0) return;
    } else {
        if (!realpath(what_path, path) || !under_root(path) || lstat(path, &info) != 0) return;
    }
    pthread_mutex_lock(&lock);
    remember(info.st_ino, next_identity++);
    pthread_mutex_unlock(&lock);
}

static int existed(int dirfd, const char *path) {
    struct stat info;
    return fstatat(dirfd, path, &info, AT_SYMLINK_NOFOLLOW) == 0;
}

// open and open64 are openat on the working directory; what matters is whether the call created the file.
static int tracked_open(int (*real)(int, const char *, int, ...), int dirfd, const char *path, int flags, mode_t mode) {
    int fresh = enabled && (flags & O_CREAT) && !existed(dirfd, path);
    int fd = real(dirfd, path, flags, mode);
    if (fresh && fd >= 0) created(fd, NULL);
    return fd;
}

#define MODE_ARGUMENT(flags)                                           \
    mode_t mode = 0;                                                   \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                             \
        va_list args;                                                  \
        va_start(args, flags);                                         \
        mode = va_arg(args, mode_t);                                   \
        va_end(args);                                                  \
    }

int open(const char *path, int flags, ...) {
    MODE_ARGUMENT(flags)
    return tracked_open(real_openat, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    MODE_ARGUMENT(flags)
    return tracked_open(real_openat64, AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARGUMENT(flags)
    return tracked_open(real_openat, dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARGUMENT(flags)
    return tracked_open(real_openat64, dirfd, path, flags, mode);
}

int mkdir(const char *path, mode_t mode) {
    int result = real_mkdir(path, mode);
    if (enabled && result == 0) created(-1, path);
    return result;
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
    int result = real_mkdirat(dirfd, path, mode);
    if (enabled && result == 0) {
        int fd = real_openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            created(fd, NULL);
            close(fd);
        }
    }
    return result;
}

// The line for one directory's entries as they are now: "D <id> name/id/kind...".
static void record_directory(const char *path, const struct stat *info) {
    DIR *directory = opendir(path);
    if (!directory) return;
    size_t capacity = 4096, length = 0;
    char *line = malloc(capacity);
    char identity[32];
    identity_of(info->st_ino, identity, sizeof identity);
    length += snprintf(line, capacity, "D\t%s", identity);
    struct dirent *entry;
    while ((entry = readdir(directory))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        struct stat child;
        if (fstatat(dirfd(directory), entry->d_name, &child, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(child.st_mode) && !S_ISDIR(child.st_mode)) continue;
        identity_of(child.st_ino, identity, sizeof identity);
        size_t need = strlen(entry->d_name) + strlen(identity) + 8;
        if (length + need + 2 > capacity) {
            capacity = 2 * (length + need + 2);
            line = realloc(line, capacity);
        }
        length += snprintf(line + length, capacity - length, "\t%s/%s/%c", entry->d_name, identity,
                           S_ISDIR(child.st_mode) ? 'd' : 'f');
    }
    closedir(directory);
    line[length++] = '\n';
    append_journal(line, length);
    free(line);
}

// Copies the file's bytes to content/<id>, through a rename so a kill mid-copy leaves the old copy.
static void record_file(const char *path, const struct stat *info) {
    char identity[32], target[PATH_MAX], temporary[PATH_MAX + 8];
    identity_of(info->st_ino, identity, sizeof identity);
    snprintf(target, sizeof target, "%s/content/%s", state, identity);
    snprintf(temporary, sizeof temporary, "%s.tmp", target);
    int from = real_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (from < 0) return;
    int to = real_openat(AT_FDCWD, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (to < 0) die(temporary);
    char buffer[65536];
    ssize_t n;
    while ((n = read(from, buffer, sizeof buffer)) > 0)
        if (write(to, buffer, n) != n) die(temporary);
    close(from);
    close(to);
    if (rename(temporary, target) != 0) die(target);
    // Lenient mode: the file's name and its parents' names, up to the root.
    char walk[PATH_MAX], line[PATH_MAX + 128];
    snprintf(walk, sizeof walk, "%s", path);
    char kind = 'f';
    while (strlen(walk) > root_length) {
        char *slash = strrchr(walk, '/');
        struct stat self, parent;
        if (lstat(walk, &self) != 0) break;
        *slash = 0;
        if (lstat(walk, &parent) != 0) break;
        char parent_identity[32];
        identity_of(self.st_ino, identity, sizeof identity);
        identity_of(parent.st_ino, parent_identity, sizeof parent_identity);
        int length = snprintf(line, sizeof line, "N\t%s\t%s\t%s\t%c\n", parent_identity, slash + 1, identity, kind);
        append_journal(line, length);
        kind = 'd';
    }
}

static void record(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return;
    path[n] = 0;
    if (!under_root(path)) return;
    struct stat info;
    if (fstat(fd, &info) != 0 || info.st_nlink == 0) return;  // deleted: nothing left to make durable
    pthread_mutex_lock(&lock);
    if (S_ISDIR(info.st_mode)) record_directory(path, &info);
    else if (S_ISREG(info.st_mode)) record_file(path, &info);
    pthread_mutex_unlock(&lock);
}

int fsync(int fd) {
    int result = real_fsync(fd);
    if (enabled && result == 0) record(fd);
    return result;
}

int fdatasync(int fd) {
    int result = real_fdatasync(fd);
    if (enabled && result == 0) record(fd);
    return result;
}

void sync(void) {
    fprintf(stderr, "powerloss: sync() is not modelled\n");
    abort();
}

int syncfs(int fd) {
    (void)fd;
    fprintf(stderr, "powerloss: syncfs() is not modelled\n");
    abort();
}
