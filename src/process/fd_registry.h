/* SPDX-License-Identifier: MIT */
/*
 * Internal: the descriptors that process pools own in the calling process (each pool's
 * end of its fork server's socket, its workers' sockets, its epoll instance and eventfd).
 *
 * A fork() copies every descriptor. A copy of a pool's socket in another process keeps the
 * socket open (its peer never sees end of file) and lets that process read or forge the
 * pool's messages. So in every child of a fork() (another pool's fork server, and through
 * it that pool's workers, or any child the application forks) a pthread_atfork handler
 * closes the registered descriptors before anything else runs there, and empties the
 * registry: the child owns none of them. (Shutdown does not rely on it either: it uses
 * shutdown(2), which acts on the socket and not on one descriptor.)
 *
 * The registry's lock is held across fork() (the atfork prepare handler), so a descriptor
 * is either registered before a fork or created after it: whoever creates one holds the
 * lock from its creation to its registration (fut__fd_registry_lock).
 */
#ifndef FUT_PROCESS_FD_REGISTRY_H
#define FUT_PROCESS_FD_REGISTRY_H

void fut__fd_registry_lock(void);
void fut__fd_registry_unlock(void);
/* Under the lock: registers fd (a negative fd is ignored). 0, or FUT_ENOMEM. */
int fut__fd_registry_add_locked(int fd);
/* Unregisters fd, then closes it, under the lock (so that no child closes the number once
 * it is reused). A negative fd is ignored. */
void fut__fd_registry_close(int fd);

#endif
