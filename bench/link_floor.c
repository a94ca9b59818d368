/* The kernel's own share of a linked install, for bench/run.sh: what release 2 of the corpus
 * asks of the filesystem when every file is linked, with nothing checked, planned or recorded.
 *
 *   link_floor SRC DST LIST THREADS
 *
 * LIST holds one line per entry of SRC (a release's venv), parents before children:
 * "d PATH" for a directory, "f PATH" for a file, PATH relative to SRC. The directories are
 * made under DST one after another (a parent before its children), then THREADS threads take
 * the files in turn, and for each one do what a linked install does for a file whose stamp
 * holds: lstat it in SRC, hard-link it into DST, lstat the new name. Every name is reached
 * from SRC's and DST's descriptors, as the install reaches them. Prints the milliseconds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char **files;
static size_t file_count;
static int source, target;
static atomic_size_t next_file;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void *link_files(void *unused) {
    (void)unused;
    struct stat before, after;
    for (size_t i; (i = atomic_fetch_add(&next_file, 1)) < file_count;) {
        if (fstatat(source, files[i], &before, AT_SYMLINK_NOFOLLOW) != 0 ||
            linkat(source, files[i], target, files[i], 0) != 0 ||
            fstatat(target, files[i], &after, AT_SYMLINK_NOFOLLOW) != 0) {
            perror(files[i]);
            exit(1);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: link_floor SRC DST LIST THREADS\n");
        return 2;
    }
    int threads = atoi(argv[4]);
    if (threads < 1 || threads > 64) threads = 1;
    source = open(argv[1], O_PATH | O_DIRECTORY);
    if (source < 0 || mkdir(argv[2], 0755) != 0) {
        perror(argv[2]);
        return 1;
    }
    target = open(argv[2], O_PATH | O_DIRECTORY);
    FILE *list = fopen(argv[3], "r");
    if (target < 0 || list == NULL) {
        perror(argv[3]);
        return 1;
    }
    size_t capacity = 1024, dir_count = 0, dir_capacity = 1024;
    char **dirs = malloc(dir_capacity * sizeof *dirs);
    files = malloc(capacity * sizeof *files);
    char *line = NULL;
    size_t length = 0;
    while (getline(&line, &length, list) > 2) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == 'd') {
            if (dir_count == dir_capacity) dirs = realloc(dirs, (dir_capacity *= 2) * sizeof *dirs);
            dirs[dir_count++] = strdup(line + 2);
        } else {
            if (file_count == capacity) files = realloc(files, (capacity *= 2) * sizeof *files);
            files[file_count++] = strdup(line + 2);
        }
    }
    double start = now();
    for (size_t i = 0; i < dir_count; i++) {
        if (mkdirat(target, dirs[i], 0755) != 0) {
            perror(dirs[i]);
            return 1;
        }
    }
    pthread_t workers[64];
    for (int i = 0; i < threads; i++) pthread_create(&workers[i], NULL, link_files, NULL);
    for (int i = 0; i < threads; i++) pthread_join(workers[i], NULL);
    printf("%.1f\n", now() - start);
    return 0;
}
