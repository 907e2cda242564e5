/* SPDX-License-Identifier: MIT */
/*
 * ping_pong: two tasks take turns through fut_task_yield (asyncio.sleep(0)), which puts
 * the running task at the back of the loop's ready queue.
 *
 *     async def player(name, rounds):
 *         for i in range(rounds):
 *             print(name, i)
 *             await asyncio.sleep(0)
 *
 * Usage: ping_pong [ROUNDS] (default 3). The output alternates: ping 0, pong 0, ping 1...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <futures.h>

struct player {
    const char *name;
    int rounds;
};

static void *player(void *arg)
{
    struct player *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        printf("%s %d\n", p->name, i);
        fut_task_yield();
    }
    return NULL;
}

static void *play(void *arg)
{
    int rounds = *(int *)arg;
    fut_loop *loop = fut_loop_current();
    struct player ping = { "ping", rounds }, pong = { "pong", rounds };
    fut_future *tasks[2] = { fut_loop_create_task(loop, player, &ping),
                             fut_loop_create_task(loop, player, &pong) };
    if (!tasks[0] || !tasks[1]) {
        fut_raise(ENOMEM, "create_task");
        return NULL;
    }
    fut_future *both = fut_loop_gather(loop, tasks, 2);  /* await asyncio.gather(...) */
    int rc = both ? fut_await(both, NULL) : FUT_ENOMEM;
    fut_future_unref(both);
    fut_future_unref(tasks[0]);
    fut_future_unref(tasks[1]);
    if (rc)
        fut_raise(rc, "gather");
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    int rc = fut_run(play, &rounds, NULL);
    if (rc) {
        fprintf(stderr, "ping_pong: %s\n", fut_strerror(rc));
        return 1;
    }
    return 0;
}
