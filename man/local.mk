# SPDX-License-Identifier: MIT
# Manual pages: man3 (one page per public function; a page shared by a family is a real
# page, the other members are ".so man3/PAGE.3" links) and the futures(7) overview.
# man/check-pages.sh checks that every function of include/futures.h has a page and that
# every page renders without groff warnings.
dist_man_MANS += \
	man/man3/fut_add_done_callback.3 \
	man/man3/fut_as_completed_free.3 \
	man/man3/fut_as_completed_new.3 \
	man/man3/fut_as_completed_next.3 \
	man/man3/fut_bytes_dup.3 \
	man/man3/fut_bytes_free.3 \
	man/man3/fut_bytes_len.3 \
	man/man3/fut_bytes_new.3 \
	man/man3/fut_cancel.3 \
	man/man3/fut_cancelled.3 \
	man/man3/fut_done.3 \
	man/man3/fut_exception.3 \
	man/man3/fut_exception_message.3 \
	man/man3/fut_executor_free.3 \
	man/man3/fut_executor_max_workers.3 \
	man/man3/fut_future_new.3 \
	man/man3/fut_future_ref.3 \
	man/man3/fut_future_unref.3 \
	man/man3/fut_loop_add_reader.3 \
	man/man3/fut_loop_add_writer.3 \
	man/man3/fut_loop_call_at.3 \
	man/man3/fut_loop_call_later.3 \
	man/man3/fut_loop_call_soon.3 \
	man/man3/fut_loop_call_soon_threadsafe.3 \
	man/man3/fut_loop_cancel.3 \
	man/man3/fut_loop_create_future.3 \
	man/man3/fut_loop_free.3 \
	man/man3/fut_loop_gather.3 \
	man/man3/fut_loop_is_running.3 \
	man/man3/fut_loop_new.3 \
	man/man3/fut_loop_remove_reader.3 \
	man/man3/fut_loop_remove_writer.3 \
	man/man3/fut_loop_run_forever.3 \
	man/man3/fut_loop_run_in_executor.3 \
	man/man3/fut_loop_run_until_complete.3 \
	man/man3/fut_loop_set_default_executor.3 \
	man/man3/fut_loop_sleep.3 \
	man/man3/fut_loop_stop.3 \
	man/man3/fut_loop_time.3 \
	man/man3/fut_loop_wrap_future.3 \
	man/man3/fut_map.3 \
	man/man3/fut_process_pool_new.3 \
	man/man3/fut_raise.3 \
	man/man3/fut_result.3 \
	man/man3/fut_running.3 \
	man/man3/fut_set_exception.3 \
	man/man3/fut_set_result.3 \
	man/man3/fut_set_running_or_notify_cancel.3 \
	man/man3/fut_shutdown.3 \
	man/man3/fut_strerror.3 \
	man/man3/fut_submit.3 \
	man/man3/fut_submit_copy.3 \
	man/man3/fut_thread_pool_new.3 \
	man/man3/fut_wait.3 \
	man/man7/futures.7

# man/check-pages.sh (see its header) runs under make check, from the build directory:
# the test harness gives it the source tree in $srcdir. It skips (77) without groff.
EXTRA_DIST += man/check-pages.sh
TESTS += man/check-pages.sh

# 0.2.0: embedding, signals, versions, statistics
dist_man_MANS += \
	man/man3/fut_executor_get_stats.3 \
	man/man3/fut_loop_add_signal_handler.3 \
	man/man3/fut_loop_fd.3 \
	man/man3/fut_loop_remove_signal_handler.3 \
	man/man3/fut_loop_run_once.3 \
	man/man3/fut_loop_timeout.3 \
	man/man3/fut_version.3 \
	man/man3/fut_version_string.3

# Coroutine tasks (src/task)
dist_man_MANS += \
	man/man3/fut_loop_create_task.3 \
	man/man3/fut_loop_current.3 \
	man/man3/fut_task_current.3 \
	man/man3/fut_loop_set_task_stack_size.3 \
	man/man3/fut_await.3 \
	man/man3/fut_await_timeout.3 \
	man/man3/fut_task_yield.3 \
	man/man3/fut_await_readable.3 \
	man/man3/fut_await_writable.3 \
	man/man3/fut_run.3

# The MPI executor (libfutures-mpi): installed with it, shipped always.
if HAVE_MPI
dist_man_MANS += man/man3/fut_mpi_pool_new.3 man/man3/fut_mpi_last_error.3
else
EXTRA_DIST += man/man3/fut_mpi_pool_new.3 man/man3/fut_mpi_last_error.3
endif
