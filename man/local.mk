# The event loop (issue 4): one page per family, .so links for the rest.
dist_man_MANS += \
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
	man/man3/fut_loop_wrap_future.3
