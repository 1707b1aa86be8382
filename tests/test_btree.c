/* SPDX-License-Identifier: MIT */
/*
 * B+trees over a real journal: a model check against a sorted array, growth
 * and shrinking, transaction abort and crash recovery (every byte a change
 * overwrites is logged, every byte it writes reaches the media at commit),
 * -ENOSPC from the allocator and from a full journal lane, damaged trees,
 * and the speed of a tree of a million entries.
 *
 * Blocks come from a bitmap allocator in this file, through the journal's
 * struct udx_block_ops.  Test values are derived from (key, version), so the
 * model holds only keys, versions and lengths.
 */
#include "testutil.h"

#include "base/compiler.h"
#include "fs/alloc.h"
#include "fs/btree.h"
#include "fs/journal.h"

#define JSTART  1               /* the journal starts after block 0 */
#define OWNER   7

#if defined(__SANITIZE_THREAD__)
#define SLOW 8                  /* scale the big tests down by this */
#elif defined(__SANITIZE_ADDRESS__)
#define SLOW 4
#else
#define SLOW 1
#endif

/* ---- a test block allocator: one byte per device block ---------------------- */

struct talloc {
	uint8_t *ta_used;
	uint64_t ta_first, ta_nblocks;
	uint64_t ta_nused;
	int64_t ta_budget;              /* allocations left; < 0: no limit */
	uint64_t ta_hint;
};

static int ta_alloc(void *ctx, uint64_t want, uint64_t min, uint64_t goal,
		    unsigned flags, uint64_t *blk, uint64_t *got)
{
	struct talloc *ta = ctx;
	uint64_t span = ta->ta_nblocks - ta->ta_first, i;

	/* tree nodes only; next fit from the last allocation (the goal is
	 * a hint that this allocator does not need) */
	assert_true(want == 1 && min == 1 && (flags & UDX_ALLOC_META));
	if (ta->ta_budget == 0)
		return -ENOSPC;
	for (i = 0; i < span; i++) {
		uint64_t b = ta->ta_first + (ta->ta_hint - ta->ta_first + i) % span;

		if (!ta->ta_used[b]) {
			ta->ta_used[b] = 1;
			ta->ta_nused++;
			ta->ta_hint = b + 1 < ta->ta_nblocks ? b + 1 : ta->ta_first;
			if (ta->ta_budget > 0)
				ta->ta_budget--;
			*blk = b;
			*got = 1;
			return 0;
		}
	}
	return -ENOSPC;
}

static void ta_free(void *ctx, uint64_t blk, uint64_t len)
{
	struct talloc *ta = ctx;
	uint64_t i;

	for (i = blk; i < blk + len; i++) {
		assert_true(i >= ta->ta_first && i < ta->ta_nblocks);
		assert_true(ta->ta_used[i]);    /* a double free is a bug */
		ta->ta_used[i] = 0;
		ta->ta_nused--;
	}
}

static const struct udx_block_ops ta_ops = {
	.alloc = ta_alloc,
	.free = ta_free,
};

/* ---- the environment: device, journal, allocator, tree, model --------------- */

struct ment {
	uint64_t key;
	uint32_t ver;
	uint16_t vlen;
};

struct tenv {
	struct udx_dev *dev;
	char *base;
	uint64_t size, nblocks;
	unsigned nlanes;
	uint64_t lane_blocks;
	struct udx_journal jn;
	struct talloc ta;
	struct btree bt;
	struct ment *m;                 /* the model: sorted by key */
	size_t mn, mcap;
	uint32_t ver;
	uint64_t rng;
	uint64_t keyspace;
};

static int env_setup(void **state, const char *spec, unsigned nlanes, uint64_t lane_blocks)
{
	struct tenv *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->dev = tu_anon(spec);
	e->base = udx_dev_addr(e->dev);
	e->size = udx_dev_size(e->dev);
	e->nblocks = e->size >> UDX_BLOCK_SHIFT;
	e->nlanes = nlanes;
	e->lane_blocks = lane_blocks;
	journal_format(e->dev, e->base, JSTART, nlanes, lane_blocks);
	e->ta.ta_first = JSTART + nlanes * lane_blocks;
	e->ta.ta_nblocks = e->nblocks;
	e->ta.ta_used = calloc(e->nblocks, 1);
	e->ta.ta_budget = -1;
	e->ta.ta_hint = e->ta.ta_first;
	assert_non_null(e->ta.ta_used);
	assert_int_equal(journal_init(&e->jn, e->dev, JSTART, nlanes, lane_blocks,
				      &ta_ops, &e->ta), 0);
	e->bt = (struct btree){
		.bt_base = e->base,
		.bt_nblocks = e->nblocks,
		.bt_root = 0,
		.bt_owner = OWNER,
		.bt_kind = UDX_BT_DIRENTS,
		.bt_goal = e->ta.ta_first,
	};
	e->rng = tu_seed();
	e->keyspace = 1u << 16;
	*state = e;
	return 0;
}

static int setup_64m(void **state) { return env_setup(state, "anon:64M", 4, 512); }
static int setup_256m(void **state) { return env_setup(state, "anon:256M", 4, 512); }
/* crash images are copies of the whole device: keep it small */
static int setup_16m(void **state) { return env_setup(state, "anon:16M", 2, 512); }
/* lanes of 4 blocks: a few operations fill one */
static int setup_tiny_lanes(void **state) { return env_setup(state, "anon:64M", 2, 4); }

static int env_teardown(void **state)
{
	struct tenv *e = *state;

	journal_exit(&e->jn);
	udx_dev_close(e->dev);
	free(e->ta.ta_used);
	free(e->m);
	free(e);
	return 0;
}

static void env_begin(struct tenv *e, struct udx_tx *tx)
{
	tx_begin(&e->jn, tx);
	e->bt.bt_tx = tx;
}

static void env_commit(struct tenv *e, struct udx_tx *tx)
{
	assert_int_equal(tx_commit(tx), 0);
	e->bt.bt_tx = NULL;
}

static void env_abort(struct tenv *e, struct udx_tx *tx)
{
	tx_abort(tx);
	e->bt.bt_tx = NULL;
}

static struct udx_bnode *node_at(const struct btree *bt, uint64_t blk)
{
	return (struct udx_bnode *)(bt->bt_base + (blk << UDX_BLOCK_SHIFT));
}

static struct udx_bslot *slot_at(const struct udx_bnode *n, unsigned i)
{
	return (struct udx_bslot *)((char *)n + sizeof(*n) + i * sizeof(struct udx_bslot));
}

static int tree_height(const struct btree *bt)
{
	return bt->bt_root ? node_at(bt, bt->bt_root)->n_level + 1 : 0;
}

/* ---- values and the model ---------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;                       /* a bijection: distinct keys */
}


static void make_val(uint64_t key, uint32_t ver, uint16_t vlen, uint8_t *buf)
{
	uint64_t s = (key * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ver << 17) ^ 0x5bd1e995u;
	uint64_t r = 0;
	unsigned i;

	s |= 1;
	for (i = 0; i < vlen; i++) {
		if (i % 8 == 0)
			r = tu_rand(&s);
		buf[i] = (uint8_t)(r >> (8 * (i % 8)));
	}
}

/* The first model entry with a key >= @key. */
static size_t m_lower(const struct tenv *e, uint64_t key)
{
	size_t lo = 0, hi = e->mn;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (e->m[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool m_find(const struct tenv *e, uint64_t key, size_t *i)
{
	*i = m_lower(e, key);
	return *i < e->mn && e->m[*i].key == key;
}

static void m_insert(struct tenv *e, size_t i, struct ment me)
{
	if (e->mn == e->mcap) {
		e->mcap = e->mcap ? 2 * e->mcap : 1024;
		e->m = realloc(e->m, e->mcap * sizeof(*e->m));
		assert_non_null(e->m);
	}
	memmove(&e->m[i + 1], &e->m[i], (e->mn - i) * sizeof(*e->m));
	e->m[i] = me;
	e->mn++;
}

static void m_remove(struct tenv *e, size_t i)
{
	memmove(&e->m[i], &e->m[i + 1], (e->mn - i - 1) * sizeof(*e->m));
	e->mn--;
}

static void expect_entry(const struct bt_cursor *c, const struct ment *me)
{
	uint8_t want[BT_VAL_MAX];
	const void *v;
	uint16_t vlen;

	assert_true(bt_key(c) == me->key);
	v = bt_val(c, &vlen);
	assert_int_equal(vlen, me->vlen);
	make_val(me->key, me->ver, me->vlen, want);
	assert_memory_equal(v, want, vlen);
}

/* ---- checking a whole tree ---------------------------------------------------- */

struct vctx {
	const struct btree *bt;
	uint64_t nodes;
	uint64_t *blks;                 /* optional: the nodes reached */
	size_t nblks, blks_cap;
	char msgs[4096];                /* the problems reported, one a line */
	bool quiet;
};

static void v_block(void *arg, uint64_t blk)
{
	struct vctx *v = arg;

	v->nodes++;
	if (v->blks) {
		if (v->nblks == v->blks_cap) {
			v->blks_cap *= 2;
			v->blks = realloc(v->blks, v->blks_cap * sizeof(*v->blks));
			assert_non_null(v->blks);
		}
		v->blks[v->nblks++] = blk;
	}
}

static void v_problem(void *arg, const char *what)
{
	struct vctx *v = arg;
	size_t len = strlen(v->msgs);

	if (!v->quiet)
		fprintf(stderr, "problem: %s\n", what);
	if (len + strlen(what) + 2 < sizeof(v->msgs)) {
		strcat(v->msgs, what);
		strcat(v->msgs, "\n");
	}
}

/*
 * The tree must pass bt_check, every node's checksum must match, and a walk
 * with the cursor must give the model exactly.  Returns the number of nodes.
 */
static uint64_t verify_tree(const struct btree *bt, const struct ment *m, size_t mn)
{
	struct vctx v = { .bt = bt, .blks_cap = 64 };
	struct bt_cursor c;
	uint64_t nkeys = 0, problems;
	size_t i;
	int ret;

	v.blks = malloc(v.blks_cap * sizeof(*v.blks));
	problems = bt_check(bt, v_block, v_problem, &v, &nkeys);
	assert_true(problems == 0);
	assert_true(nkeys == mn);
	for (i = 0; i < v.nblks; i++) {
		const struct udx_bnode *n = node_at(bt, v.blks[i]);

		assert_true(bt_node_csum(n, v.blks[i]) == n->n_checksum);
	}
	free(v.blks);

	ret = bt_seek(bt, 0, &c);
	for (i = 0; i < mn; i++) {
		assert_int_equal(ret, 0);
		expect_entry(&c, &m[i]);
		ret = bt_next(&c);
	}
	assert_int_equal(ret, -ENOENT);
	return v.nodes;
}

/* Between transactions every allocated block is a node of the tree. */
static void env_verify(struct tenv *e)
{
	uint64_t nodes = verify_tree(&e->bt, e->m, e->mn);

	assert_true(nodes == e->ta.ta_nused);
	assert_true((int64_t)nodes == e->bt.bt_nodes);
}

/* ---- operations checked against the model -------------------------------------- */

static uint64_t rand_key(struct tenv *e)
{
	uint64_t r = tu_rand(&e->rng);

	switch (r % 16) {
	case 0:
	case 1:
		return e->mn ? e->m[(r >> 8) % e->mn].key : 0;
	case 2:
		return e->mn ? e->m[(r >> 8) % e->mn].key + 1 : 1;
	case 3:
		return e->mn ? e->m[(r >> 8) % e->mn].key - 1 : 2;
	case 4:
		return (r >> 8) % 4 == 0 ? UINT64_MAX - (r >> 10) % 3 : (r >> 10) % 3;
	default:
		/* spread over 64 bits, from a limited set so that keys recur */
		return ((r >> 8) % e->keyspace) * 0x0000f00dcafe1234ull;
	}
}

static uint16_t rand_vlen(struct tenv *e)
{
	uint64_t r = tu_rand(&e->rng);

	switch (r % 10) {
	case 0: case 1: case 2: case 3: case 4:
		return (uint16_t)(1 + (r >> 8) % 48);
	case 5: case 6: case 7:
		return (uint16_t)(1 + (r >> 8) % BT_VAL_MAX);
	default:
		return (uint16_t)(BT_VAL_MAX - (r >> 8) % 100);
	}
}

/* An insert, update or delete, done on the tree and the model; returns the
 * tree's error when it is not the expected outcome (caller decides). */
static int op_insert(struct tenv *e, uint64_t key, uint16_t vlen)
{
	uint8_t buf[BT_VAL_MAX];
	size_t i;
	bool has = m_find(e, key, &i);
	uint32_t ver = ++e->ver;
	int ret;

	make_val(key, ver, vlen, buf);
	ret = bt_insert(&e->bt, key, buf, vlen);
	if (has) {
		if (ret == -EEXIST)
			return 0;
		return ret ? ret : -EINVAL;
	}
	if (ret == 0)
		m_insert(e, i, (struct ment){ key, ver, vlen });
	return ret;
}

static int op_update(struct tenv *e, uint64_t key, uint16_t vlen)
{
	uint8_t buf[BT_VAL_MAX];
	size_t i;
	bool has = m_find(e, key, &i);
	uint32_t ver = ++e->ver;
	int ret;

	make_val(key, ver, vlen, buf);
	ret = bt_update(&e->bt, key, buf, vlen);
	if (!has) {
		if (ret == -ENOENT)
			return 0;
		return ret ? ret : -EINVAL;
	}
	if (ret == 0)
		e->m[i] = (struct ment){ key, ver, vlen };
	return ret;
}

static int op_delete(struct tenv *e, uint64_t key)
{
	size_t i;
	bool has = m_find(e, key, &i);
	int ret = bt_delete(&e->bt, key);

	if (!has) {
		if (ret == -ENOENT)
			return 0;
		return ret ? ret : -EINVAL;
	}
	if (ret == 0)
		m_remove(e, i);
	return ret;
}

/* Lookups, seeks and a few steps of iteration, compared with the model. */
static void op_read(struct tenv *e, uint64_t key)
{
	uint8_t buf[BT_VAL_MAX], want[BT_VAL_MAX];
	struct bt_cursor c;
	uint16_t vlen = sizeof(buf);
	size_t i, j;
	bool has = m_find(e, key, &i);
	int ret, step;

	ret = bt_lookup(&e->bt, key, buf, &vlen);
	if (has) {
		assert_int_equal(ret, 0);
		assert_int_equal(vlen, e->m[i].vlen);
		make_val(key, e->m[i].ver, vlen, want);
		assert_memory_equal(buf, want, vlen);
		/* a short buffer gets a prefix and the full length */
		vlen = 3;
		memset(buf, 0, 8);
		assert_int_equal(bt_lookup(&e->bt, key, buf, &vlen), 0);
		assert_int_equal(vlen, e->m[i].vlen);
		assert_memory_equal(buf, want, MIN(3, e->m[i].vlen));
	} else {
		assert_int_equal(ret, -ENOENT);
	}

	ret = bt_seek(&e->bt, key, &c);
	for (j = i, step = 0; step < 5; step++, j++) {
		if (j == e->mn) {
			assert_int_equal(ret, -ENOENT);
			assert_int_equal(bt_next(&c), -ENOENT);
			break;
		}
		assert_int_equal(ret, 0);
		expect_entry(&c, &e->m[j]);
		ret = bt_next(&c);
	}

	/* the last entry <= key: i if found, else the one before */
	ret = bt_seek_le(&e->bt, key, &c);
	j = i;
	if (!has) {
		if (i == 0) {
			assert_int_equal(ret, -ENOENT);
			return;
		}
		j = i - 1;
	}
	assert_int_equal(ret, 0);
	expect_entry(&c, &e->m[j]);
	if (j + 1 < e->mn) {
		assert_int_equal(bt_next(&c), 0);
		expect_entry(&c, &e->m[j + 1]);
	} else {
		assert_int_equal(bt_next(&c), -ENOENT);
	}
}

/*
 * One random change (or a read), or a run of keys in order up or down next
 * to an existing key (appending fills nodes; a run below the smallest key
 * moves the first keys of the internal nodes).  Returns the first
 * unexpected error.
 */
static int rand_op_reads(struct tenv *e, bool reads)
{
	uint64_t r = tu_rand(&e->rng), key = rand_key(e);
	int ret = 0, i, n;

	switch (r % 100) {
	case 0 ... 39:
		return op_insert(e, key, rand_vlen(e));
	case 40 ... 54:
		return op_update(e, key, rand_vlen(e));
	case 55 ... 82:
		return op_delete(e, key);
	case 83 ... 89:
		/* a run of deletes from a key on */
		n = 1 + (int)((r >> 8) % 40);
		for (i = 0; i < n && !ret && e->mn; i++) {
			size_t j = m_lower(e, key);

			if (j == e->mn)
				break;
			ret = op_delete(e, e->m[j].key);
		}
		return ret;
	case 90 ... 95:
		n = 1 + (int)((r >> 8) % 60);
		for (i = 0; i < n && !ret; i++)
			ret = op_insert(e, (r & (1ull << 20)) ? key + (uint64_t)i : key - (uint64_t)i,
					(uint16_t)(1 + (r >> 24) % 64));
		return ret;
	default:
		if (reads)
			op_read(e, key);
		return 0;
	}
}

static int rand_op(struct tenv *e)
{
	return rand_op_reads(e, true);
}

/* ---- snapshots of the nodes, for abort and recovery ----------------------------- */

struct tsnap {
	uint64_t root;
	int64_t nodes;
	uint64_t nused;
	struct ment *m;
	size_t mn;
	uint32_t ver;
	uint64_t *blks;
	size_t nblks;
	char *img;                      /* nblks blocks, in the order of blks */
};

static void snap_take(struct tenv *e, struct tsnap *s)
{
	struct vctx v = { .bt = &e->bt, .blks_cap = 64 };
	size_t i;

	v.blks = malloc(v.blks_cap * sizeof(*v.blks));
	assert_true(bt_check(&e->bt, v_block, v_problem, &v, NULL) == 0);
	s->root = e->bt.bt_root;
	s->nodes = e->bt.bt_nodes;
	s->nused = e->ta.ta_nused;
	s->mn = e->mn;
	s->ver = e->ver;
	s->m = malloc((e->mn + 1) * sizeof(*s->m));
	memcpy(s->m, e->m, e->mn * sizeof(*s->m));
	s->blks = v.blks;
	s->nblks = v.nblks;
	s->img = malloc(s->nblks * UDX_BLOCK_SIZE + 1);
	for (i = 0; i < s->nblks; i++)
		memcpy(s->img + i * UDX_BLOCK_SIZE, node_at(&e->bt, s->blks[i]), UDX_BLOCK_SIZE);
}

/* The model goes back to the snapshot's. */
static void snap_restore_model(struct tenv *e, const struct tsnap *s)
{
	e->mn = 0;
	e->bt.bt_root = s->root;
	e->bt.bt_nodes = s->nodes;
	e->ver = s->ver;
	if (s->mn > e->mcap) {
		e->mcap = s->mn;
		e->m = realloc(e->m, e->mcap * sizeof(*e->m));
	}
	memcpy(e->m, s->m, s->mn * sizeof(*s->m));
	e->mn = s->mn;
}

/*
 * Every node of the snapshot has, at @base, the bytes the checksum covers
 * exactly as before, and the whole value area too (nothing writes above
 * n_vstart without logging); only free space below it may differ.
 */
static void snap_expect_nodes(const struct tsnap *s, const char *base)
{
	size_t i;

	for (i = 0; i < s->nblks; i++) {
		const char *was = s->img + i * UDX_BLOCK_SIZE;
		const char *now = base + (s->blks[i] << UDX_BLOCK_SHIFT);
		const struct udx_bnode *n = (const struct udx_bnode *)was;
		size_t send = sizeof(*n) + n->n_nkeys * sizeof(struct udx_bslot);

		assert_memory_equal(now, was, send);
		assert_memory_equal(now + n->n_vstart, was + n->n_vstart,
				    UDX_BLOCK_SIZE - n->n_vstart);
	}
}

static void snap_restore_nodes(const struct tsnap *s, char *base)
{
	size_t i;

	for (i = 0; i < s->nblks; i++)
		memcpy(base + (s->blks[i] << UDX_BLOCK_SHIFT), s->img + i * UDX_BLOCK_SIZE,
		       UDX_BLOCK_SIZE);
}

static void snap_free(struct tsnap *s)
{
	free(s->m);
	free(s->blks);
	free(s->img);
	memset(s, 0, sizeof(*s));
}

/* ---- crash images -------------------------------------------------------------- */

/* A copy of the device as a crash left it, recovered by its own journal. */
struct image {
	struct udx_dev *dev;
	struct udx_journal jn;
	struct btree bt;
	int recovered;                  /* journal_recover()'s count */
};

static void image_open(struct tenv *e, struct image *im, const void *bytes)
{
	char spec[64];

	snprintf(spec, sizeof(spec), "anon:%lluK", (unsigned long long)(e->size >> 10));
	im->dev = tu_anon(spec);
	memcpy(udx_dev_addr(im->dev), bytes, e->size);
	assert_int_equal(journal_init(&im->jn, im->dev, JSTART, e->nlanes, e->lane_blocks,
				      &ta_ops, NULL), 0);
	im->recovered = journal_recover(&im->jn);
	assert_true(im->recovered >= 0);
	im->bt = e->bt;
	im->bt.bt_base = udx_dev_addr(im->dev);
	im->bt.bt_tx = NULL;
}

static void image_close(struct image *im)
{
	journal_exit(&im->jn);
	udx_dev_close(im->dev);
}

/*
 * The media as a crash would leave it when nothing persists unless flushed
 * and drained: persistence hooks copy each flushed line from the device to
 * the shadow at the next drain.
 */
struct shadow {
	const char *live;
	char *img;
	uint64_t *pend;                 /* line offsets flushed, not drained */
	size_t npend, cap;
};

static void sh_flush(void *ctx, const void *addr, size_t len)
{
	struct shadow *sh = ctx;
	uint64_t off = ALIGN_DOWN((uint64_t)((const char *)addr - sh->live), 64ull);
	uint64_t end = (uint64_t)((const char *)addr - sh->live) + len;

	for (; off < end; off += 64) {
		if (sh->npend == sh->cap) {
			sh->cap = sh->cap ? 2 * sh->cap : 4096;
			sh->pend = realloc(sh->pend, sh->cap * sizeof(*sh->pend));
			assert_non_null(sh->pend);
		}
		sh->pend[sh->npend++] = off;
	}
}

static void sh_drain(void *ctx)
{
	struct shadow *sh = ctx;
	size_t i;

	for (i = 0; i < sh->npend; i++)
		memcpy(sh->img + sh->pend[i], sh->live + sh->pend[i], 64);
	sh->npend = 0;
}

static const struct udx_persist_ops sh_ops = {
	.flush = sh_flush,
	.drain = sh_drain,
};

/* ---- the tests ------------------------------------------------------------------ */

static void test_empty_and_basics(void **state)
{
	struct tenv *e = *state;
	struct btree *bt = &e->bt;
	uint8_t buf[BT_VAL_MAX + 8], want[BT_VAL_MAX];
	struct bt_cursor c;
	struct udx_tx tx;
	uint16_t vlen = 8;
	const void *v;
	uint64_t nkeys = 1;

	/* an empty tree */
	assert_int_equal(bt_lookup(bt, 1, buf, &vlen), -ENOENT);
	assert_int_equal(bt_seek(bt, 0, &c), -ENOENT);
	assert_int_equal(bt_next(&c), -ENOENT);
	assert_int_equal(bt_seek_le(bt, UINT64_MAX, &c), -ENOENT);
	assert_true(bt_check(bt, NULL, NULL, NULL, &nkeys) == 0);
	assert_true(nkeys == 0);
	/* no transaction: read-only */
	assert_int_equal(bt_insert(bt, 1, "x", 1), -EROFS);
	assert_int_equal(bt_delete(bt, 1), -EROFS);

	env_begin(e, &tx);
	assert_int_equal(bt_delete(bt, 1), -ENOENT);
	assert_int_equal(bt_update(bt, 1, "x", 1), -ENOENT);
	assert_int_equal(bt_insert(bt, 1, buf, BT_VAL_MAX + 1), -EINVAL);
	assert_int_equal(op_insert(e, 10, 20), 0);
	assert_true(bt->bt_root != 0);
	assert_true(bt->bt_nodes == 1);
	assert_int_equal(bt_insert(bt, 10, "x", 1), -EEXIST);
	assert_int_equal(bt_delete(bt, 11), -ENOENT);
	assert_int_equal(op_insert(e, 0, 1), 0);
	assert_int_equal(op_insert(e, UINT64_MAX, BT_VAL_MAX), 0);
	/* an empty value */
	assert_int_equal(bt_insert(bt, 5, NULL, 0), 0);
	m_insert(e, 1, (struct ment){ 5, 0, 0 });
	assert_int_equal(op_update(e, 10, 3), 0);                /* shorter */
	assert_int_equal(op_update(e, 10, BT_VAL_MAX), 0);       /* longer */
	assert_int_equal(op_update(e, 5, 0), 0);
	env_commit(e, &tx);
	op_read(e, 0);
	op_read(e, 4);
	op_read(e, 10);
	op_read(e, UINT64_MAX);
	op_read(e, UINT64_MAX - 1);
	env_verify(e);

	/* a value read from the tree itself, stored under another key and
	 * over itself */
	env_begin(e, &tx);
	assert_true(e->m[2].key == 10);
	make_val(10, e->m[2].ver, e->m[2].vlen, want);
	assert_int_equal(bt_seek(bt, 10, &c), 0);
	v = bt_val(&c, &vlen);
	assert_int_equal(bt_insert(bt, 11, v, vlen), 0);
	vlen = sizeof(buf);
	assert_int_equal(bt_lookup(bt, 11, buf, &vlen), 0);
	assert_int_equal(vlen, e->m[2].vlen);
	assert_memory_equal(buf, want, vlen);
	assert_int_equal(bt_seek(bt, 10, &c), 0);
	v = bt_val(&c, &vlen);
	assert_int_equal(bt_update(bt, 10, v, vlen), 0);
	assert_int_equal(bt_delete(bt, 11), 0);
	env_commit(e, &tx);
	env_verify(e);

	/* down to nothing: the root leaf is freed */
	env_begin(e, &tx);
	while (e->mn)
		assert_int_equal(op_delete(e, e->m[e->mn / 2].key), 0);
	assert_true(bt->bt_root == 0);
	env_commit(e, &tx);
	env_verify(e);
	assert_true(e->ta.ta_nused == 0);
}

/* Tens of thousands of random operations, in transactions of random size,
 * against the model. */
static void test_model_random(void **state)
{
	struct tenv *e = *state;
	int nops = 60000 / (SLOW > 4 ? 6 : SLOW > 1 ? 2 : 1), done = 0, maxh = 0, ntx = 0;
	struct udx_tx tx;

	while (done < nops) {
		int batch = 1 + (int)(tu_rand(&e->rng) % 64), i;

		env_begin(e, &tx);
		for (i = 0; i < batch; i++, done++) {
			assert_int_equal(rand_op(e), 0);
			if (done % 5000 == 4999)
				verify_tree(&e->bt, e->m, e->mn);
		}
		env_commit(e, &tx);
		maxh = MAX(maxh, tree_height(&e->bt));
		if (++ntx % 50 == 0)
			env_verify(e);
	}
	env_verify(e);
	printf("model: %d ops, %zu keys at the end, up to %d levels, %llu nodes\n",
	       done, e->mn, maxh, (unsigned long long)e->ta.ta_nused);
	assert_true(maxh >= (SLOW > 4 ? 2 : 3));

	/* and destroyed */
	env_begin(e, &tx);
	assert_int_equal(bt_destroy(&e->bt), 0);
	assert_true(e->bt.bt_root == 0);
	env_commit(e, &tx);
	e->mn = 0;
	env_verify(e);
	assert_true(e->ta.ta_nused == 0 && e->bt.bt_nodes == 0);
}

static int ment_cmp(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* The model from @n keys inserted with version 0 and the length below. */
static uint16_t grow_vlen(uint64_t key)
{
	return (uint16_t)(BT_VAL_MAX - key % 64);
}

static void model_from_keys(struct tenv *e, const uint64_t *keys, size_t n)
{
	size_t i;

	e->mn = 0;
	for (i = 0; i < n; i++)
		m_insert(e, e->mn, (struct ment){ keys[i], 0, grow_vlen(keys[i]) });
	qsort(e->m, e->mn, sizeof(*e->m), ment_cmp);
}

/* Growth to four levels with large values, then deletion of everything in
 * random order: every node is freed, none twice.  (No running model: an
 * array would cost more than the tree; it is rebuilt to check.) */
static void test_grow_shrink(void **state)
{
	struct tenv *e = *state;
	size_t n = 160000 / SLOW, i;
	uint64_t *keys = malloc(n * sizeof(*keys));
	uint8_t val[BT_VAL_MAX];
	struct udx_tx tx;
	int h;

	for (i = 0; i < n; i++)
		keys[i] = mix64(i);
	for (i = 0; i < n; i++) {
		if (i % 100 == 0)
			env_begin(e, &tx);
		make_val(keys[i], 0, grow_vlen(keys[i]), val);
		assert_int_equal(bt_insert(&e->bt, keys[i], val, grow_vlen(keys[i])), 0);
		if (i % 100 == 99 || i == n - 1)
			env_commit(e, &tx);
	}
	h = tree_height(&e->bt);
	printf("grow: %zu entries, %d levels, %llu nodes\n", n, h,
	       (unsigned long long)e->ta.ta_nused);
	assert_true(h >= (SLOW > 1 ? 3 : 4));
	model_from_keys(e, keys, n);
	env_verify(e);

	/* delete in another order */
	for (i = 0; i < n; i++) {
		size_t j = i + tu_rand(&e->rng) % (n - i);
		uint64_t t = keys[i];

		keys[i] = keys[j];
		keys[j] = t;
	}
	for (i = 0; i < n; i++) {
		if (i % 100 == 0)
			env_begin(e, &tx);
		assert_int_equal(bt_delete(&e->bt, keys[i]), 0);
		assert_int_equal(bt_delete(&e->bt, keys[i]), -ENOENT);
		if (i % 100 == 99 || i == n - 1) {
			env_commit(e, &tx);
			/* (between transactions: frees happen at commit) */
			if ((i / 100) % (n / 800) == 0) {
				model_from_keys(e, keys + i + 1, n - i - 1);
				env_verify(e);
				assert_true(tree_height(&e->bt) <= h);
			}
		}
	}
	assert_true(e->bt.bt_root == 0);
	assert_true(e->ta.ta_nused == 0);
	assert_true(e->bt.bt_nodes == 0);
	free(keys);
}

static void build_tree(struct tenv *e, size_t n)
{
	struct udx_tx tx;
	size_t i = 0;

	while (e->mn < n) {
		if (i++ % 50 == 0)
			env_begin(e, &tx);
		assert_int_equal(op_insert(e, rand_key(e), rand_vlen(e)), 0);
		if (i % 50 == 0 || e->mn == n)
			env_commit(e, &tx);
	}
	if (e->bt.bt_tx)
		env_commit(e, &tx);
	env_verify(e);
}

/* A batch of changes in one transaction, aborted: the tree comes back byte
 * for byte, and so does the allocator. */
static void test_abort(void **state)
{
	struct tenv *e = *state;
	struct udx_tx tx;
	struct tsnap s;
	int round, i;

	e->keyspace = 12000;
	build_tree(e, 6000);
	for (round = 0; round < 30 / (SLOW > 4 ? 3 : 1); round++) {
		int nops = 50 + (int)(tu_rand(&e->rng) % 400);

		snap_take(e, &s);
		env_begin(e, &tx);
		if (round % 10 == 9) {
			/* empty the tree, then start another */
			while (e->mn)
				assert_int_equal(op_delete(e, e->m[tu_rand(&e->rng) % e->mn].key), 0);
			assert_true(e->bt.bt_root == 0);
		}
		for (i = 0; i < nops; i++)
			assert_int_equal(rand_op(e), 0);
		verify_tree(&e->bt, e->m, e->mn);       /* right inside the transaction */
		env_abort(e, &tx);
		snap_restore_model(e, &s);
		snap_expect_nodes(&s, e->base);
		assert_true(e->ta.ta_nused == s.nused);
		env_verify(e);
		snap_free(&s);

		/* and some committed changes before the next round */
		env_begin(e, &tx);
		for (i = 0; i < 100; i++)
			assert_int_equal(rand_op(e), 0);
		env_commit(e, &tx);
	}
	env_verify(e);
}

/*
 * Crashes.  Before the commit: copies of the device taken between the
 * operations of a transaction (every store made, none committed) recover to
 * the tree as it was.  After the commit: the media as only flushes made it
 * (a shadow fed by the persistence hooks) recovers to the new tree, so every
 * byte the transaction wrote was logged or marked dirty.
 */
static void test_crash_recovery(void **state)
{
	struct tenv *e = *state;
	struct shadow sh = { .live = e->base };
	struct udx_tx tx;
	struct image im;
	struct tsnap s;
	int round, i;

	sh.img = malloc(e->size);
	assert_non_null(sh.img);
	e->keyspace = 12000;
	build_tree(e, 5000);
	for (round = 0; round < 12 / SLOW + 1; round++) {
		int nops = 100 + (int)(tu_rand(&e->rng) % 300);

		snap_take(e, &s);
		memcpy(sh.img, e->base, e->size);       /* all durable so far */
		udx_dev_set_persist_ops(e->dev, &sh_ops, &sh);
		env_begin(e, &tx);
		for (i = 0; i < nops; i++) {
			assert_int_equal(rand_op(e), 0);
			if (i % (97 * (SLOW > 1 ? 2 : 1)) == 50) {
				image_open(e, &im, e->base);
				assert_true(im.recovered > 0);
				im.bt.bt_root = s.root;
				verify_tree(&im.bt, s.m, s.mn);
				snap_expect_nodes(&s, udx_dev_addr(im.dev));
				image_close(&im);

				/* as only the flushes left it: records, no data */
				image_open(e, &im, sh.img);
				im.bt.bt_root = s.root;
				verify_tree(&im.bt, s.m, s.mn);
				snap_expect_nodes(&s, udx_dev_addr(im.dev));
				image_close(&im);
			}
		}
		env_commit(e, &tx);
		udx_dev_set_persist_ops(e->dev, NULL, NULL);

		image_open(e, &im, sh.img);
		assert_int_equal(im.recovered, 0);
		verify_tree(&im.bt, e->m, e->mn);
		image_close(&im);
		env_verify(e);
		snap_free(&s);
	}
	free(sh.img);
	free(sh.pend);
}

/*
 * The allocator runs dry in the middle of splits: -ENOSPC leaves the tree as
 * it was before the failed call; an abort restores the tree before the
 * transaction, and a commit keeps the calls that worked and leaks nothing.
 */
static void test_enospc(void **state)
{
	struct tenv *e = *state;
	struct udx_tx tx;
	struct tsnap s, mid;
	int budget, commit, i, ret = 0;

	e->keyspace = 1u << 30;
	build_tree(e, 3000);
	for (commit = 0; commit < 2; commit++) {
		for (budget = 0; budget < 4; budget++) {
			snap_take(e, &s);
			env_begin(e, &tx);
			e->ta.ta_budget = budget;
			for (i = 0; i < 100000; i++) {
				uint64_t key = rand_key(e);
				size_t j;

				if (m_find(e, key, &j))
					continue;
				snap_take(e, &mid);
				ret = op_insert(e, key, BT_VAL_MAX);
				if (ret)
					break;
				snap_free(&mid);
			}
			assert_int_equal(ret, -ENOSPC);
			/* the failed call changed nothing */
			snap_expect_nodes(&mid, e->base);
			assert_true(e->bt.bt_root == mid.root);
			assert_true(e->bt.bt_nodes == mid.nodes);
			verify_tree(&e->bt, e->m, e->mn);
			snap_free(&mid);
			e->ta.ta_budget = -1;
			if (commit) {
				env_commit(e, &tx);
				env_verify(e);
			} else {
				env_abort(e, &tx);
				snap_restore_model(e, &s);
				snap_expect_nodes(&s, e->base);
				env_verify(e);
			}
			snap_free(&s);
		}
	}
}

/*
 * One block per call: a split that needs two (the leaf's and its parent's)
 * fails after taking one, which must go back through tx_free(): the failed
 * call changes nothing, and a commit afterwards leaks nothing.
 */
static void test_enospc_mid_split(void **state)
{
	struct tenv *e = *state;
	struct udx_tx tx;
	struct tsnap mid;
	int i, ret = 0, ok = 0;

	e->keyspace = 1u << 30;
	build_tree(e, 2000);
	env_begin(e, &tx);
	for (i = 0; i < 20000; i++) {
		uint64_t key = rand_key(e), nused = e->ta.ta_nused;
		size_t j;

		if (m_find(e, key, &j))
			continue;
		if (i % 50 == 0) {
			env_commit(e, &tx);
			env_verify(e);
			env_begin(e, &tx);
		}
		snap_take(e, &mid);
		e->ta.ta_budget = 1;
		ret = op_insert(e, key, BT_VAL_MAX);
		e->ta.ta_budget = -1;
		if (ret == 0) {
			ok++;
			snap_free(&mid);
			continue;
		}
		assert_int_equal(ret, -ENOSPC);
		if (e->ta.ta_nused == nused) {
			snap_free(&mid);        /* failed at its first block */
			continue;
		}
		/* one block taken, to be given back at commit */
		assert_true(e->ta.ta_nused == nused + 1);
		snap_expect_nodes(&mid, e->base);
		assert_true(e->bt.bt_root == mid.root);
		assert_true(e->bt.bt_nodes == mid.nodes);
		snap_free(&mid);
		break;
	}
	assert_int_equal(ret, -ENOSPC);
	env_commit(e, &tx);
	env_verify(e);
	printf("enospc: the split that needed two blocks came after %d inserts\n", ok);
}

/*
 * Journal lanes of four blocks: operations fail with -ENOSPC from tx_log()
 * at every point of inserts, splits, compactions and deletes.  The failing
 * call must store nothing unlogged after the failure: the abort then gives
 * back the tree exactly.
 */
static void test_journal_full(void **state)
{
	struct tenv *e = *state;
	struct udx_tx tx;
	struct tsnap s;
	int round, i, ret, fails = 0;

	e->keyspace = 6000;
	/* build with one operation per transaction */
	while (e->mn < 3000) {
		int64_t nodes = e->bt.bt_nodes;

		env_begin(e, &tx);
		ret = op_insert(e, rand_key(e), rand_vlen(e));
		assert_true(ret == 0 || ret == -ENOSPC);
		if (ret) {
			env_abort(e, &tx);
			e->bt.bt_nodes = nodes;
		} else {
			env_commit(e, &tx);
		}
	}
	env_verify(e);
	for (round = 0; round < 400 / SLOW; round++) {
		snap_take(e, &s);
		env_begin(e, &tx);
		for (i = 0, ret = 0; i < 1000 && !ret; i++)
			ret = rand_op(e);
		assert_true(ret == 0 || ret == -ENOSPC);
		fails += ret != 0;
		env_abort(e, &tx);
		snap_restore_model(e, &s);
		snap_expect_nodes(&s, e->base);
		assert_true(e->ta.ta_nused == s.nused);
		if (round % 20 == 0)
			env_verify(e);
		snap_free(&s);
	}
	assert_true(fails > 0);
	env_verify(e);
}

/* ---- damaged trees ----------------------------------------------------------------- */

static void fix_csum(const struct btree *bt, uint64_t blk)
{
	struct udx_bnode *n = node_at(bt, blk);

	n->n_checksum = bt_node_csum(n, blk);
}

static int is_ok_read(int ret)
{
	return ret == 0 || ret == -ENOENT || ret == -EUCLEAN;
}

/* Readers on a damaged tree: only 0, -ENOENT or -EUCLEAN, an iteration that
 * ends, values inside nodes.  Returns how many calls gave -EUCLEAN. */
static int read_all(struct tenv *e, uint64_t max_steps)
{
	uint8_t buf[BT_VAL_MAX];
	struct bt_cursor c;
	uint64_t steps = 0;
	int i, ret, unclean = 0;

	for (i = 0; i < 30; i++) {
		uint64_t key = rand_key(e);
		uint16_t vlen = sizeof(buf);

		ret = bt_lookup(&e->bt, key, buf, &vlen);
		assert_true(is_ok_read(ret));
		unclean += ret == -EUCLEAN;
		if (ret == 0)
			assert_true(vlen <= BT_VAL_MAX);
		ret = bt_seek_le(&e->bt, key, &c);
		assert_true(is_ok_read(ret));
		unclean += ret == -EUCLEAN;
		if (ret == 0)
			assert_true(bt_key(&c) <= key);
	}
	ret = bt_seek(&e->bt, 0, &c);
	while (ret == 0) {
		const char *v;
		uint16_t vlen;

		v = bt_val(&c, &vlen);
		assert_true(vlen <= BT_VAL_MAX);
		assert_true(v >= e->base && v + vlen <= e->base + e->size);
		assert_true(++steps <= max_steps);
		ret = bt_next(&c);
	}
	assert_true(is_ok_read(ret));
	unclean += ret == -EUCLEAN;
	return unclean;
}

/* Writers on a damaged tree, in a transaction that is then aborted. */
static void write_some(struct tenv *e)
{
	struct tsnap none = { 0 };
	struct udx_tx tx;
	int i, ret;
	size_t mn = e->mn;

	none.m = malloc((e->mn + 1) * sizeof(*none.m));
	memcpy(none.m, e->m, e->mn * sizeof(*e->m));
	none.mn = e->mn;
	none.root = e->bt.bt_root;
	none.nodes = e->bt.bt_nodes;
	none.ver = e->ver;
	env_begin(e, &tx);
	for (i = 0; i < 10; i++) {
		/* the model says what should happen; -EINVAL: it did not */
		ret = rand_op_reads(e, false);
		assert_true(ret == 0 || ret == -EUCLEAN || ret == -EEXIST || ret == -ENOENT ||
			    ret == -EINVAL || ret == -EFBIG);
	}
	{
		/* a whole destroy, too: refused or done, never a crash */
		ret = bt_destroy(&e->bt);
		assert_true(ret == 0 || ret == -EUCLEAN);
	}
	env_abort(e, &tx);
	snap_restore_model(e, &none);
	assert_true(e->mn == mn);
	free(none.m);
}

static uint64_t check_quiet(struct tenv *e, struct vctx *v)
{
	memset(v, 0, sizeof(*v));
	v->bt = &e->bt;
	v->quiet = true;
	return bt_check(&e->bt, v_block, v_problem, v, NULL);
}

/* Is byte @off of the node image @n covered by its checksum? */
static bool covered(const struct udx_bnode *n, unsigned off)
{
	unsigned i;

	if (off < sizeof(*n) + n->n_nkeys * sizeof(struct udx_bslot))
		return true;
	for (i = 0; i < n->n_nkeys; i++) {
		const struct udx_bslot *s = (const struct udx_bslot *)((const char *)n + 32 + 12 * i);

		if (off >= s->s_voff && off < (unsigned)s->s_voff + s->s_vlen)
			return true;
	}
	return false;
}

static void test_damaged(void **state)
{
	struct tenv *e = *state;
	struct tsnap s;
	struct vctx v;
	uint64_t root, child0, leaf, max_steps;
	struct udx_bnode *n;
	int i, flips = 1000 / SLOW, detected = 0, unclean = 0;

	e->keyspace = 1u << 30;
	build_tree(e, 4000);
	assert_true(tree_height(&e->bt) >= 3);
	snap_take(e, &s);
	max_steps = s.nblks * 340;
	root = e->bt.bt_root;

	/* the snapshot's nodes: the aborted writers changed nothing else that
	 * matters (free space and freed blocks aside) */
#define RESTORE() do { snap_restore_nodes(&s, e->base); \
		       snap_restore_model(e, &s); } while (0)
#define CHILD(n, i) (*(uint64_t *)((char *)(n) + \
		((struct udx_bslot *)((char *)(n) + 32 + 12 * (i)))->s_voff))

	/* random byte flips in random nodes */
	for (i = 0; i < flips; i++) {
		size_t k = tu_rand(&e->rng) % s.nblks;
		const struct udx_bnode *was = (const struct udx_bnode *)(s.img + k * UDX_BLOCK_SIZE);
		char *p = (char *)node_at(&e->bt, s.blks[k]);
		int nflips = 1 + (int)(tu_rand(&e->rng) % 3), f;
		unsigned off[3];
		bool cov = false;

		for (f = 0; f < nflips; f++) {
			/* half of them in the header and slots */
			off[f] = (unsigned)(tu_rand(&e->rng) % (f % 2 ? UDX_BLOCK_SIZE : 512));
			p[off[f]] ^= (char)(1 + tu_rand(&e->rng) % 255);
		}
		/* (two flips of one byte may cancel out) */
		for (f = 0; f < nflips; f++)
			cov |= covered(was, off[f]) && p[off[f]] != ((const char *)was)[off[f]];
		if (cov && check_quiet(e, &v) > 0)
			detected++;
		else if (cov)
			fail_msg("flip in covered bytes of node %llu not detected",
				 (unsigned long long)s.blks[k]);
		unclean += read_all(e, max_steps) > 0;
		write_some(e);
		memcpy(p, was, UDX_BLOCK_SIZE);
		snap_restore_model(e, &s);
		if (i % 100 == 0)
			env_verify(e);
	}
	printf("damage: %d flips, %d detected by bt_check, %d made readers say -EUCLEAN\n",
	       flips, detected, unclean);
	RESTORE();

	n = node_at(&e->bt, root);
	child0 = CHILD(n, 0);
	/* a leaf of the first subtree with two keys at least (the tests below
	 * swap two; the random tree may leave a leaf with one) */
	leaf = child0;
	while (node_at(&e->bt, leaf)->n_level > 1)
		leaf = CHILD(node_at(&e->bt, leaf), 0);
	{
		struct udx_bnode *parent = node_at(&e->bt, leaf);
		unsigned j;

		for (j = 0; j < parent->n_nkeys; j++)
			if (node_at(&e->bt, CHILD(parent, j))->n_nkeys >= 2)
				break;
		assert_true(j < parent->n_nkeys);
		leaf = CHILD(parent, j);
	}

	/* a bad magic: readers going through it say -EUCLEAN */
	node_at(&e->bt, child0)->n_magic ^= 1;
	assert_int_equal(bt_seek(&e->bt, 0, &(struct bt_cursor){ 0 }), -EUCLEAN);
	assert_true(check_quiet(e, &v) > 0);
	assert_non_null(strstr(v.msgs, "not a tree node"));
	read_all(e, max_steps);
	write_some(e);
	RESTORE();

	/* child pointers out of the device, and 0 */
	n = node_at(&e->bt, root);
	CHILD(n, 1) = e->nblocks + 5;
	fix_csum(&e->bt, root);
	assert_true(check_quiet(e, &v) > 0);
	assert_non_null(strstr(v.msgs, "outside the device"));
	{
		uint64_t k = slot_at(n, 1)->s_key;
		uint16_t vlen = 0;

		assert_int_equal(bt_lookup(&e->bt, k, NULL, &vlen), -EUCLEAN);
	}
	read_all(e, max_steps);
	write_some(e);
	CHILD(n, 1) = 0;
	fix_csum(&e->bt, root);
	assert_true(check_quiet(e, &v) > 0);
	read_all(e, max_steps);
	write_some(e);
	RESTORE();

	/* a cycle: a child pointer back to the root */
	n = node_at(&e->bt, child0);
	CHILD(n, 0) = root;
	fix_csum(&e->bt, child0);
	assert_true(check_quiet(e, &v) > 0);
	assert_int_equal(bt_seek(&e->bt, 0, &(struct bt_cursor){ 0 }), -EUCLEAN);
	read_all(e, max_steps);
	write_some(e);
	RESTORE();

	/* shared nodes: every pointer of the root to its first child */
	n = node_at(&e->bt, root);
	for (i = 0; i < n->n_nkeys; i++)
		CHILD(n, i) = child0;
	fix_csum(&e->bt, root);
	assert_true(check_quiet(e, &v) > 0);
	assert_non_null(strstr(v.msgs, "reached twice"));
	assert_true(v.nodes < s.nblks);
	assert_true(read_all(e, max_steps) > 0);
	{
		struct udx_tx tx;

		env_begin(e, &tx);
		assert_int_equal(bt_destroy(&e->bt), -EUCLEAN);
		assert_true(e->bt.bt_root == root);
		env_abort(e, &tx);
	}
	write_some(e);
	RESTORE();

	/* a node shared by every pointer of a deep level: bt_check stays linear */
	{
		uint64_t l1 = child0, target;

		n = node_at(&e->bt, l1);
		target = CHILD(n, 0);
		for (i = 0; i < n->n_nkeys; i++)
			CHILD(n, i) = target;
		fix_csum(&e->bt, l1);
		assert_true(check_quiet(e, &v) > 0);
		assert_true(v.nodes <= s.nblks);
		read_all(e, max_steps);
		RESTORE();
	}

	/* keys out of order in a leaf, checksum made to match */
	n = node_at(&e->bt, leaf);
	{
		struct udx_bslot *a = (struct udx_bslot *)((char *)n + 32);
		struct udx_bslot *b = a + 1, t;

		assert_true(n->n_nkeys >= 2);
		t = *a;
		*a = *b;
		*b = t;
	}
	fix_csum(&e->bt, leaf);
	assert_true(check_quiet(e, &v) > 0);
	assert_non_null(strstr(v.msgs, "keys out of order"));
	read_all(e, max_steps);
	write_some(e);
	RESTORE();

	/* a key outside its parent's range */
	n = node_at(&e->bt, leaf);
	((struct udx_bslot *)((char *)n + 32 + 12 * (n->n_nkeys - 1)))->s_key = UINT64_MAX;
	fix_csum(&e->bt, leaf);
	assert_true(check_quiet(e, &v) > 0);
	assert_non_null(strstr(v.msgs, "outside the range"));
	read_all(e, max_steps);
	RESTORE();

	/* header and slot fields, each with a checksum that matches */
	for (i = 0; i < 9; i++) {
		uint64_t blk = (i == 0 || i == 2 || i == 4 || i == 8) ? root : leaf;

		n = node_at(&e->bt, blk);
		switch (i) {
		case 0: n->n_level = 200; break;                        /* root too deep */
		case 1: n->n_level = 3; break;                          /* leaf not a leaf */
		case 2: n->n_nkeys = 0xffff; break;
		case 3: n->n_vstart = 40; break;                        /* over the slots */
		case 4: n->n_owner = 8; break;
		case 5: slot_at(n, 0)->s_voff = 4095; slot_at(n, 0)->s_vlen = 8; break;
		case 6: slot_at(n, 0)->s_vlen = BT_VAL_MAX + 88; break;
		case 7: n->n_nkeys = 0; break;                          /* empty leaf */
		case 8: slot_at(n, 0)->s_vlen = 4; break;               /* short child */
		}
		fix_csum(&e->bt, blk);
		assert_true(check_quiet(e, &v) > 0);
		assert_true(read_all(e, max_steps) > 0);
		write_some(e);
		RESTORE();
	}

	/* only the checksum: readers do not see it, bt_check does */
	node_at(&e->bt, leaf)->n_checksum ^= 1;
	assert_true(check_quiet(e, &v) == 1);
	assert_non_null(strstr(v.msgs, "checksum mismatch"));
	assert_non_null(strstr(v.msgs, "directory tree of inode 7: node"));
	assert_int_equal(read_all(e, max_steps), 0);
	RESTORE();

	/* the root pointer itself */
	e->bt.bt_root = e->nblocks;
	assert_true(check_quiet(e, &v) == 1);
	assert_int_equal(bt_seek(&e->bt, 0, &(struct bt_cursor){ 0 }), -EUCLEAN);
	e->bt.bt_root = root;

	verify_tree(&e->bt, e->m, e->mn);
	snap_free(&s);
#undef RESTORE
#undef CHILD
}

/* ---- a million entries ---------------------------------------------------------------- */

static void test_million(void **state)
{
	struct tenv *e = *state;
	const char *env = getenv("UDX_BTREE_ENTRIES");
	size_t n = env ? strtoull(env, NULL, 0) : 1000000 / SLOW, i;
	uint8_t val[40], buf[64];
	uint64_t t0, t_ins, t_look, t_scan, t_check, t_del, nkeys;
	struct bt_cursor c;
	struct udx_tx tx;
	int ret;

	t0 = tu_now_ns();
	for (i = 0; i < n; i++) {
		if (i % 100 == 0)
			env_begin(e, &tx);
		memcpy(val, &i, sizeof(i));
		memset(val + 8, (int)(i & 0xff), sizeof(val) - 8);
		assert_int_equal(bt_insert(&e->bt, mix64(i), val, sizeof(val)), 0);
		if (i % 100 == 99 || i == n - 1)
			env_commit(e, &tx);
	}
	t_ins = tu_now_ns() - t0;

	t0 = tu_now_ns();
	for (i = 0; i < n; i++) {
		size_t j = (i * 7919) % n;
		uint16_t vlen = sizeof(buf);

		ret = bt_lookup(&e->bt, mix64(j), buf, &vlen);
		if (ret || vlen != sizeof(val) || memcmp(buf, &j, sizeof(j)))
			fail_msg("lookup %zu: %d", j, ret);
	}
	t_look = tu_now_ns() - t0;

	t0 = tu_now_ns();
	ret = bt_seek(&e->bt, 0, &c);
	for (i = 0; ret == 0; i++)
		ret = bt_next(&c);
	assert_int_equal(ret, -ENOENT);
	assert_true(i == n);
	t_scan = tu_now_ns() - t0;

	t0 = tu_now_ns();
	assert_true(bt_check(&e->bt, NULL, v_problem, &(struct vctx){ 0 }, &nkeys) == 0);
	assert_true(nkeys == n);
	t_check = tu_now_ns() - t0;

	printf("million: %zu entries of 40 bytes, %d levels, %llu nodes (%.0f%% full)\n",
	       n, tree_height(&e->bt), (unsigned long long)e->ta.ta_nused,
	       100.0 * (double)n * 52 / ((double)e->ta.ta_nused * (UDX_BLOCK_SIZE - 32)));
	printf("million: insert %.0f ns (100 per transaction), lookup %.0f ns, "
	       "scan %.1f ns/entry, bt_check %.0f ms\n",
	       (double)t_ins / (double)n, (double)t_look / (double)n,
	       (double)t_scan / (double)n, (double)t_check / 1e6);

	t0 = tu_now_ns();
	for (i = 0; i < n; i++) {
		if (i % 100 == 0)
			env_begin(e, &tx);
		assert_int_equal(bt_delete(&e->bt, mix64((i * 7919) % n)), 0);
		if (i % 100 == 99 || i == n - 1)
			env_commit(e, &tx);
	}
	t_del = tu_now_ns() - t0;
	printf("million: delete %.0f ns (100 per transaction)\n", (double)t_del / (double)n);
	assert_true(e->bt.bt_root == 0);
	assert_true(e->ta.ta_nused == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_and_basics, setup_64m, env_teardown),
		cmocka_unit_test_setup_teardown(test_model_random, setup_64m, env_teardown),
		cmocka_unit_test_setup_teardown(test_grow_shrink, setup_256m, env_teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup_64m, env_teardown),
		cmocka_unit_test_setup_teardown(test_crash_recovery, setup_16m, env_teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup_64m, env_teardown),
		cmocka_unit_test_setup_teardown(test_enospc_mid_split, setup_64m, env_teardown),
		cmocka_unit_test_setup_teardown(test_journal_full, setup_tiny_lanes, env_teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup_64m, env_teardown),
		cmocka_unit_test_setup_teardown(test_million, setup_256m, env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
