/* SPDX-License-Identifier: MIT */
/*
 * Forked workers drawing random numbers.
 *
 * Every worker is a copy of this process, random generator state included; the process
 * pool reseeds rand(), random() and drand48() in each worker, so the draws differ from
 * worker to worker. Each task reports its worker's pid and three draws as a bytes buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <futures.h>

struct draw {
    long pid;
    int r;
    long rnd;
    double d;
};

static void *draw(void *arg)
{
    (void)arg;
    struct draw *out = fut_bytes_new(sizeof *out);
    if (!out) {
        fut_raise(ENOMEM, "no memory for the draw");
        return NULL;
    }
    *out = (struct draw){ getpid(), rand(), random(), drand48() };
    return out;
}

int main(void)
{
    srand(1);  /* the parent's seed: without reseeding, every worker would repeat it */
    enum { WORKERS = 4 };
    /* one task per worker, so each line comes from a different process */
    fut_executor *ex = fut_process_pool_new(
        &(fut_pool_options){ .max_workers = WORKERS, .max_tasks_per_child = 1 });
    if (!ex) {
        perror("fut_process_pool_new");
        return 1;
    }
    fut_future *fs[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        fs[i] = fut_submit(ex, draw, NULL);
    printf("parent %ld: rand() would give %d in every worker without reseeding\n",
           (long)getpid(), rand());
    int rc = 0;
    for (int i = 0; i < WORKERS; i++) {
        void *result = NULL;
        if (!fs[i] || fut_result(fs[i], FUT_FOREVER, &result) != 0) {
            fprintf(stderr, "task %d failed\n", i);
            rc = 1;
        } else {
            const struct draw *d = result;
            printf("worker %ld: rand() %d, random() %ld, drand48() %f\n", d->pid, d->r, d->rnd, d->d);
        }
        fut_future_unref(fs[i]);
    }
    fut_executor_free(ex);
    return rc;
}
