/* SPDX-License-Identifier: MIT */
/*
 * glib_embed: a libfutures loop driven by a GLib main loop, as a GUI program would.
 *
 * The libfutures loop never runs by itself here: a GSource of our own asks it how long
 * GLib may sleep (fut_loop_timeout), watches its file descriptor (fut_loop_fd) for I/O,
 * thread-safe calls and executor completions, and runs one non-blocking iteration
 * (fut_loop_run_once with timeout 0) whenever there is something to do. Timers, an
 * executor task and a call from another thread all arrive while GLib's own timeout runs
 * beside them. Built only when GLib is found; make check runs it.
 *
 *   ./examples/glib_embed
 */
#include <glib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <futures.h>

/* ---- the bridge: a GSource for a fut_loop ------------------------------------------- */

struct fut_source {
    GSource source;
    fut_loop *loop;
    gpointer fd_tag;
};

/* Before GLib polls: how long may it sleep? 0 (dispatch now) when callbacks are ready or
 * a timer is due, else until the next timer, or for ever (-1) on fd events alone. */
static gboolean fut_source_prepare(GSource *source, gint *timeout_ms)
{
    struct fut_source *s = (struct fut_source *)source;
    double t = fut_loop_timeout(s->loop);
    *timeout_ms = t < 0 ? -1 : (gint)ceil(t * 1000);
    return t == 0;
}

/* After GLib polled: is there work (the fd polled readable, or the time has come)? */
static gboolean fut_source_check(GSource *source)
{
    struct fut_source *s = (struct fut_source *)source;
    return (g_source_query_unix_fd(source, s->fd_tag) & G_IO_IN) ||
           fut_loop_timeout(s->loop) == 0;
}

static gboolean fut_source_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    struct fut_source *s = (struct fut_source *)source;
    if (fut_loop_run_once(s->loop, 0) < 0)
        return G_SOURCE_REMOVE;
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs fut_source_funcs = {
    .prepare = fut_source_prepare,
    .check = fut_source_check,
    .dispatch = fut_source_dispatch,
};

static GSource *fut_source_new(fut_loop *loop)
{
    GSource *source = g_source_new(&fut_source_funcs, sizeof(struct fut_source));
    struct fut_source *s = (struct fut_source *)source;
    s->loop = loop;
    s->fd_tag = g_source_add_unix_fd(source, fut_loop_fd(loop), G_IO_IN);
    return source;
}

/* ---- the program ---------------------------------------------------------------------- */

struct app {
    GMainLoop *main_loop;
    fut_loop *loop;
    int pending;                   /* libfutures events still to come */
    int glib_ticks;
};

static void one_done(struct app *app)
{
    if (--app->pending == 0)
        g_main_loop_quit(app->main_loop);
}

static void on_timer(void *arg)
{
    struct app *app = arg;
    printf("libfutures timer fired (run by GLib's main loop)\n");
    one_done(app);
}

static void on_threadsafe(void *arg)
{
    struct app *app = arg;
    printf("libfutures call_soon_threadsafe from another thread arrived\n");
    one_done(app);
}

static void on_task_done(fut_future *f, void *arg)
{
    struct app *app = arg;
    void *value = NULL;
    if (fut_result(f, 0, &value) == 0)
        printf("executor task finished: %ld\n", (long)(intptr_t)value);
    one_done(app);
}

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

static void *post_from_thread(void *arg)
{
    struct app *app = arg;
    if (fut_loop_call_soon_threadsafe(app->loop, on_threadsafe, app) == 0)
        abort();
    return NULL;
}

static gboolean on_glib_tick(gpointer data)
{
    struct app *app = data;
    app->glib_ticks++;
    return G_SOURCE_CONTINUE;
}

int main(void)
{
    struct app app = { .pending = 3 };
    app.loop = fut_loop_new();
    if (!app.loop) {
        perror("fut_loop_new");
        return EXIT_FAILURE;
    }
    app.main_loop = g_main_loop_new(NULL, FALSE);
    GSource *source = fut_source_new(app.loop);
    g_source_attach(source, NULL);
    g_timeout_add(10, on_glib_tick, &app);

    /* three kinds of libfutures events: a timer, an executor completion, a thread's call */
    fut_loop_call_later(app.loop, 0.05, on_timer, &app);
    fut_future *f = fut_loop_run_in_executor(app.loop, NULL, square, (void *)(intptr_t)12);
    if (!f || fut_add_done_callback(f, on_task_done, &app) != 0) {
        perror("run_in_executor");
        return EXIT_FAILURE;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, post_from_thread, &app) != 0)
        return EXIT_FAILURE;

    g_main_loop_run(app.main_loop);
    pthread_join(t, NULL);
    printf("all 3 libfutures events handled inside GLib's main loop (GLib ticked too: %s)\n",
           app.glib_ticks > 0 ? "yes" : "no");

    g_source_destroy(source);
    g_source_unref(source);
    g_main_loop_unref(app.main_loop);
    fut_future_unref(f);
    fut_loop_free(app.loop);
    return EXIT_SUCCESS;
}
