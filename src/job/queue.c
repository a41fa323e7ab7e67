/* Blocking FIFO for the job pipeline. */
#include "job/queue.h"

#include <stdlib.h>

int bc_queue_init(bc_queue *q, size_t depth) {
  q->head = q->tail = NULL;
  q->n = 0;
  q->depth = depth;
  q->aborted = 0;
  if (pthread_mutex_init(&q->mu, NULL) != 0) return -1;
  if (pthread_cond_init(&q->cv, NULL) != 0) {
    pthread_mutex_destroy(&q->mu);
    return -1;
  }
  return 0;
}

void bc_queue_destroy(bc_queue *q) {
  bc_qnode *n = q->head;
  while (n) {
    bc_qnode *next = n->next;
    free(n);
    n = next;
  }
  pthread_cond_destroy(&q->cv);
  pthread_mutex_destroy(&q->mu);
}

int bc_queue_push(bc_queue *q, void *item) {
  bc_qnode *node = malloc(sizeof *node);
  if (!node) return -1;
  node->item = item;
  node->next = NULL;
  pthread_mutex_lock(&q->mu);
  while (!q->aborted && q->depth && q->n >= q->depth) pthread_cond_wait(&q->cv, &q->mu);
  if (q->aborted) {
    pthread_mutex_unlock(&q->mu);
    free(node);
    return -1;
  }
  if (q->tail)
    q->tail->next = node;
  else
    q->head = node;
  q->tail = node;
  q->n++;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return 0;
}

void *bc_queue_pop(bc_queue *q) {
  pthread_mutex_lock(&q->mu);
  while (!q->aborted && !q->head) pthread_cond_wait(&q->cv, &q->mu);
  if (q->aborted) {
    pthread_mutex_unlock(&q->mu);
    return NULL;
  }
  bc_qnode *node = q->head;
  q->head = node->next;
  if (!q->head) q->tail = NULL;
  q->n--;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  void *item = node->item;
  free(node);
  return item;
}

void bc_queue_abort(bc_queue *q) {
  pthread_mutex_lock(&q->mu);
  q->aborted = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}
