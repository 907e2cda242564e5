# SPDX-License-Identifier: MIT
# src/task: coroutine tasks on the event loop (create_task, await, yield, fut_run), each
# on a stack of its own. The stack switch is assembly on x86-64 and AArch64, ucontext
# elsewhere (configure --with-task-switch).
libfutures_la_SOURCES += \
	src/task/task.c src/task/task.h \
	src/task/await.c \
	src/task/stack.c src/task/stack.h \
	src/task/switch.h
if TASK_SWITCH_X86_64
libfutures_la_SOURCES += src/task/switch_x86_64.S src/task/switch_asm.c
endif
if TASK_SWITCH_AARCH64
libfutures_la_SOURCES += src/task/switch_aarch64.S src/task/switch_asm.c
endif
if TASK_SWITCH_UCONTEXT
libfutures_la_SOURCES += src/task/switch_ucontext.c
endif
EXTRA_DIST += src/task/switch_x86_64.S src/task/switch_aarch64.S src/task/switch_asm.c \
	src/task/switch_ucontext.c
