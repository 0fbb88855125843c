/* SPDX-License-Identifier: MIT */
/*
 * htab: the one in-memory hash table (open addressing, linear probing,
 * backward-shift deletion: no tombstones).  Entries of a fixed size are
 * stored in the table itself, each starting with its key.  Keys are bytes
 * (ksz of them, hashed and compared as such) unless the table is given a
 * hash and an equality of its own (a key that points elsewhere, such as a
 * name).  The table doubles when an add would pass its load factor.
 *
 *	struct hoard_htab t = HOARD_HTAB_INIT(sizeof(struct e), 16, 50);
 *	struct e *x = hoard_htab_put(&t, &id, &added);	(NULL: ENOMEM)
 *	x = hoard_htab_get(&t, &id);			(NULL: absent)
 *	for (size_t pos = 0; (x = hoard_htab_next(&t, &pos));) ...
 *	hoard_htab_free(&t);
 *
 * An entry pointer is valid until the next put or del.  Expected O(1) per
 * get, put and del; O(cap) to walk.
 *
 * Threads: none inside.  A table is the caller's: the caller's lock
 * protects it (or it belongs to one thread).
 */
#ifndef HOARD_HTAB_H
#define HOARD_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hoard_htab {
	uint8_t *e;	/* cap entries of esz bytes */
	uint8_t *used;	/* cap flags */
	size_t cap;	/* 0 or a power of two */
	size_t n;	/* entries */
	size_t esz;	/* bytes of an entry, the key first */
	size_t ksz;	/* bytes of the key */
	unsigned load;	/* most entries per 100 slots, 10..90 */
	size_t min_cap; /* the first allocation's slots (0: 16) */
	/* NULL: the key's ksz bytes; else of the key at an entry's start */
	uint64_t (*hash)(const void *key);
	bool (*eq)(const void *a, const void *b);
};

#define HOARD_HTAB_INIT(esz_, ksz_, load_)                                     \
	((struct hoard_htab){.esz = (esz_), .ksz = (ksz_), .load = (load_)})

/* Room for n entries without growing (optional): 0 or -ENOMEM. */
int hoard_htab_reserve(struct hoard_htab *t, size_t n);
/* The entry of key, or NULL. */
void *hoard_htab_get(const struct hoard_htab *t, const void *key);
/* The entry of key; when absent, a new one: zeroed but for the key copied
 * in (*ret_added true, if ret_added is not NULL).  NULL on ENOMEM. */
void *hoard_htab_put(struct hoard_htab *t, const void *key, bool *ret_added);
/* Remove key's entry: true when there was one. */
bool hoard_htab_del(struct hoard_htab *t, const void *key);
/* Walk: start with *pos = 0; the next entry, or NULL at the end.  Not
 * across a put or del. */
void *hoard_htab_next(const struct hoard_htab *t, size_t *pos);
/* Free the slots; t keeps its settings, empty (accepts an empty t). */
void hoard_htab_free(struct hoard_htab *t);
/* The mixing of 8 bytes used for byte keys (splitmix64's finalizer). */
uint64_t hoard_htab_mix64(uint64_t x);

#endif
