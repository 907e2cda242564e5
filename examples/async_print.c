/* SPDX-License-Identifier: MIT */
/*
 * async_print: callbacks scheduled with fut_loop_call_later, in scrambled order, print
 * in the order of their times; the last one stops the loop.
 */
#include <stdio.h>

#include <futures.h>

struct message {
    fut_loop *loop;
    double delay;
    const char *text;
    double start;
};

static void print_message(void *arg)
{
    struct message *m = arg;
    printf("%5.3f s  (due at %.3f s)  %s\n", fut_loop_time(m->loop) - m->start, m->delay,
           m->text);
}

static void stop(void *arg)
{
    fut_loop_stop(arg);
}

int main(void)
{
    fut_loop *loop = fut_loop_new();
    if (!loop) {
        perror("fut_loop_new");
        return 1;
    }
    double start = fut_loop_time(loop);
    struct message messages[] = {
        { loop, 0.30, "four", start }, { loop, 0.10, "two", start },
        { loop, 0.00, "one", start },  { loop, 0.40, "five", start },
        { loop, 0.20, "three", start },
    };
    size_t n = sizeof messages / sizeof messages[0];
    for (size_t i = 0; i < n; i++)
        if (!fut_loop_call_later(loop, messages[i].delay, print_message, &messages[i])) {
            perror("fut_loop_call_later");
            return 1;
        }
    fut_loop_call_later(loop, 0.5, stop, loop);
    int rc = fut_loop_run_forever(loop);
    fut_loop_free(loop);
    return rc == 0 ? 0 : 1;
}
