/* A small blocking FIFO for the job's threads: push waits while `depth` items are queued
 * (0 = unbounded), pop waits for an item; abort wakes everyone and makes both return failure. */
#ifndef BC_JOB_QUEUE_H
#define BC_JOB_QUEUE_H

#include <pthread.h>
#include <stddef.h>

typedef struct bc_qnode {
  void *item;
  struct bc_qnode *next;
} bc_qnode;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bc_qnode *head, *tail;
  size_t n, depth;
  int aborted;
} bc_queue;

int bc_queue_init(bc_queue *q, size_t depth);
void bc_queue_destroy(bc_queue *q);         /* frees nodes, not items */
int bc_queue_push(bc_queue *q, void *item); /* 0 ok, -1 aborted or out of memory */
void *bc_queue_pop(bc_queue *q);            /* NULL when aborted */
void bc_queue_abort(bc_queue *q);

#endif
