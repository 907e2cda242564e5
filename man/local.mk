
# process pool (issue 3)
dist_man_MANS += man/man3/fut_process_pool_new.3
