// SPDX-License-Identifier: MIT
/*
 * Tests for hoard's JSON (json.h over jansson) and the modules' writers and
 * readers: conventions (one line, key order, integers, 3-decimal numbers),
 * lossy and byte-preserving strings, and round trips of stats, push/pull
 * summaries and gc reports, with every truncation of a written text refused
 * by its reader.  Also the Prometheus text of the stats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/fsck.h"
#include "hoard/gc.h"
#include "hoard/json.h"
#include "hoard/stats.h"
#include "hoard/sync.h"
#include "check.h"

static void test_conventions(void)
{
	char *t;
	json_t *o;
	uint64_t u;
	double d;
	bool b;

	t = hoard_json_dump(json_pack("{s:o,s:o,s:o,s:b}", "z",
				      hoard_json_u64(7), "a",
				      hoard_json_real3(2.0 / 3.0), "m",
				      hoard_json_real3(1.0), "t", 1),
			    true);
	CHECK(t && !strcmp(t, "{\"z\":7,\"a\":0.667,\"m\":1.0,\"t\":true}\n"));
	free(t);
	t = hoard_json_dump(
		json_pack("{s:o}", "big", hoard_json_u64(UINT64_MAX)), false);
	CHECK(t && !strcmp(t, "{\"big\":9223372036854775807}"));
	free(t);
	CHECK(hoard_json_dump(NULL, true) == NULL);

	/* not UTF-8: U+FFFD; valid UTF-8 kept */
	t = hoard_json_dump(hoard_json_str_lossy("a\xff"
						 "b\xc3\xa9"),
			    false);
	CHECK(t && !strcmp(t, "\"a\xef\xbf\xbd"
			      "b\xc3\xa9\""));
	free(t);
	/* bytes: each byte >= 0x80 its own code point, so none is lost */
	o = hoard_json_str_bytes("a\xff\x01");
	CHECK(o && json_string_length(o) == 4 &&
	      !memcmp(json_string_value(o), "a\xc3\xbf\x01", 4));
	json_decref(o);

	o = hoard_json_parse_object(
		"{\"n\":5,\"neg\":-1,\"r\":1.5,\"s\":\"x\",\"b\":false}");
	CHECK(o != NULL);
	CHECK_EQ(hoard_json_get_u64(o, "n", false, &u), 0);
	CHECK_EQ(u, 5);
	CHECK_EQ(hoard_json_get_u64(o, "neg", false, &u), -EBADMSG);
	CHECK_EQ(hoard_json_get_u64(o, "r", false, &u), -EBADMSG);
	CHECK_EQ(hoard_json_get_u64(o, "s", false, &u), -EBADMSG);
	CHECK_EQ(hoard_json_get_u64(o, "none", false, &u), -EBADMSG);
	CHECK_EQ(hoard_json_get_u64(o, "none", true, &u), -ENOENT);
	CHECK_EQ(hoard_json_get_real(o, "n", false, &d), 0);
	CHECK(d == 5.0);
	CHECK_EQ(hoard_json_get_bool(o, "b", false, &b), 0);
	CHECK(!b);
	CHECK_EQ(hoard_json_get_bool(o, "n", false, &b), -EBADMSG);
	json_decref(o);
	CHECK(hoard_json_parse_object("[1]") == NULL);
	CHECK(hoard_json_parse_object("{\"a\":1} x") == NULL);
	CHECK(hoard_json_parse_object("{\"a\":1,\"a\":2}") == NULL);
	CHECK(hoard_json_parse_object(NULL) == NULL);
}

/* Every proper prefix of text (but the trailing newline) is refused. */
#define CHECK_TRUNCATIONS(text, parse_call)                                    \
	do {                                                                   \
		size_t n_ = strlen(text);                                      \
		char *cut_ = malloc(n_ + 1);                                   \
                                                                               \
		for (size_t k_ = 0; cut_ && k_ + 1 < n_; k_++) {               \
			memcpy(cut_, text, k_);                                \
			cut_[k_] = '\0';                                       \
			if (!CHECK((parse_call) < 0))                          \
				fprintf(stderr, "  accepted: %s\n", cut_);     \
		}                                                              \
		free(cut_);                                                    \
	} while (0)

static void test_stats(void)
{
	struct hoard_stats s = {0}, *back = NULL;
	struct hoard_stats_volume vols[2] = {
		{.name = "pip",
		 .f = {.files = 3,
		       .logical_bytes = 300,
		       .unique_bytes = 200,
		       .stored_bytes = 100,
		       .chunks = 4,
		       .dirs = 2}},
		{.name = "hf \"x\"", .f = {.files = 1, .stored_bytes = 0}},
	};
	char *t, *t2, *p;

	s.total = (struct hoard_stats_figs){.files = 4,
					    .logical_bytes = 1000,
					    .unique_bytes = 600,
					    .stored_bytes = 300,
					    .chunks = 9,
					    .dirs = 5,
					    .symlinks = 1,
					    .others = 2};
	s.db_bytes = 4096;
	s.have_cache = true;
	s.cache_hits = 10;
	s.cache_misses = 11;
	s.have_fetch = true;
	s.fetch_retries = 3;
	s.fetch_failures = 2;
	s.have_reads = true;
	s.read_errors = 7;
	s.have_budget = true;
	s.max_size = 600;
	s.n_volumes = 2;
	s.volumes = vols;

	t = hoard_stats_json(&s);
	CHECK(t != NULL);
	if (!t)
		return;
	/* names, order and formats as before jansson */
	CHECK(!strncmp(
		t,
		"{\"files\":4,\"logical_bytes\":1000,\"unique_bytes\":600,"
		"\"stored_bytes\":300,\"chunks\":9,\"dirs\":5,"
		"\"symlinks\":1,\"others\":2,\"db_bytes\":4096,"
		"\"dedup_ratio\":3.333,\"cache_hits\":10,",
		strlen("{\"files\":4,\"logical_bytes\":1000,\"unique_"
		       "bytes\":600,\"stored_bytes\":300,\"chunks\":9,"
		       "\"dirs\":5,\"symlinks\":1,\"others\":2,\"db_"
		       "bytes\":4096,\"dedup_ratio\":3.333,\"cache_"
		       "hits\":10,")));
	CHECK(strstr(t, "\"read_errors\":7") &&
	      strstr(t, "\"fetch_retries\":3"));
	CHECK(strstr(t, "\"hf \\\"x\\\"\":{\"files\":1,"));
	CHECK(t[strlen(t) - 1] == '\n' && !strchr(t, '\n')[1]);
	CHECK_EQ(hoard_stats_from_json(t, &back), 0);
	if (back) {
		t2 = hoard_stats_json(back);
		CHECK(t2 && !strcmp(t, t2));
		free(t2);
		hoard_stats_free(back);
	}
	CHECK_TRUNCATIONS(t, hoard_stats_from_json(cut_, &back));
	CHECK_EQ(hoard_stats_from_json("{\"files\":-1}", &back), -EBADMSG);
	CHECK_EQ(hoard_stats_from_json("{\"volumes\":[]}", &back), -EBADMSG);
	free(t);

	p = hoard_stats_prometheus(&s);
	CHECK(p != NULL);
	if (p) {
		CHECK(strstr(p, "# TYPE hoard_store_files gauge\n"
				"hoard_store_files 4\n"));
		CHECK(strstr(
			p, "hoard_volume_files{volume=\"hf \\\"x\\\"\"} 1\n"));
		CHECK(strstr(p, "# TYPE hoard_read_errors_total counter\n"
				"hoard_read_errors_total 7\n"));
		CHECK(strstr(p, "hoard_fetch_retries_total 3\n"));
		CHECK(strstr(p, "hoard_budget_used_ratio 0.500\n"));
		CHECK(strstr(p, "hoard_store_dedup_ratio 3.333\n"));
		free(p);
	}
	/* offline: no daemon counters */
	s.have_cache = s.have_fetch = s.have_reads = false;
	p = hoard_stats_prometheus(&s);
	CHECK(p && !strstr(p, "read_errors") && !strstr(p, "cache"));
	free(p);
}

static void test_sync_and_gc(void)
{
	struct hoard_sync_result x = {.pull = false,
				      .manifest = "ab12",
				      .files = 3,
				      .chunks_new = 2,
				      .manifest_new = true,
				      .retries = 1,
				      .elapsed_ns = 1500000000};
	struct hoard_sync_result y;
	struct hoard_gc_report g = {.disk_before = 10,
				    .disk_after = 5,
				    .db_before = 3,
				    .db_after = 2,
				    .seconds = 0.25},
			       g2;
	char *t;

	t = hoard_sync_result_json(&x);
	CHECK(t &&
	      !strcmp(t, "{\"op\":\"push\",\"manifest\":\"ab12\","
			 "\"files\":3,\"logical_bytes\":0,\"chunks\":0,"
			 "\"chunks_new\":2,\"packs_new\":0,\"bytes_new\":0,"
			 "\"bytes_dedup\":0,\"chunks_hashed\":0,"
			 "\"manifest_new\":true,"
			 "\"ref_updated\":false,\"signed_by\":null,"
			 "\"requests\":0,"
			 "\"retries\":1,\"bytes_up\":0,\"bytes_down\":0,"
			 "\"seconds\":1.5}\n"));
	CHECK_EQ(hoard_sync_result_from_json(t, &y), 0);
	CHECK(!y.pull && !strcmp(y.manifest, "ab12") && y.files == 3 &&
	      y.chunks_new == 2 && y.manifest_new && !y.ref_updated &&
	      y.retries == 1 && y.elapsed_ns == 1500000000);
	CHECK_TRUNCATIONS(t, hoard_sync_result_from_json(cut_, &y));
	CHECK_EQ(hoard_sync_result_from_json("{\"op\":\"dance\"}", &y),
		 -EBADMSG);
	CHECK_EQ(hoard_sync_result_from_json(
			 "{\"op\":\"pull\",\"added\":\"2\"}", &y),
		 -EBADMSG);
	free(t);
	x.pull = true;
	x.added = 9;
	snprintf(x.key_id, sizeof(x.key_id), "0123456789abcdef");
	t = hoard_sync_result_json(&x);
	CHECK(t && strstr(t, "\"op\":\"pull\"") && strstr(t, "\"added\":9") &&
	      !strstr(t, "chunks_new") &&
	      strstr(t, "\"conflicts\":0,\"signed_by\":\"0123456789abcdef\","));
	CHECK_EQ(hoard_sync_result_from_json(t, &y), 0);
	CHECK(y.pull && y.added == 9 && !strcmp(y.key_id, "0123456789abcdef"));
	CHECK_EQ(hoard_sync_result_from_json(
			 "{\"op\":\"pull\",\"signed_by\":1}", &y),
		 -EBADMSG);
	free(t);

	t = hoard_gc_json(&g);
	CHECK(t &&
	      !strcmp(t, "{\"disk_bytes_before\":10,\"disk_bytes_after\":5,"
			 "\"db_bytes_before\":3,\"db_bytes_after\":2,"
			 "\"seconds\":0.25}\n"));
	CHECK_EQ(hoard_gc_from_json(t, &g2), 0);
	CHECK(g2.disk_before == 10 && g2.db_after == 2 && g2.seconds == 0.25);
	CHECK_TRUNCATIONS(t, hoard_gc_from_json(cut_, &g2));
	free(t);
}

static void test_fsck(void)
{
	static const char head[] = "{\"clean\":false,\"problems\":1,"
				   "\"repaired\":false,\"writes\":0,"
				   "\"seconds\":0.0,\"closed_cleanly\":true,";
	struct hoard_fsck_report *r = calloc(1, sizeof(*r));
	char *lost[] = {"/a\xff\"b"}, *t;

	if (!CHECK(r != NULL))
		return;
	r->problems = 1;
	r->problem[HOARD_FSCK_CORRUPT_CHUNKS] = 1;
	r->lost = lost;
	r->n_lost = 1;
	r->seconds = 0.0004;
	t = hoard_fsck_json(r);
	CHECK(t && !strncmp(t, head, strlen(head)));
	CHECK(t && strstr(t, "\"corrupt_chunks\":1"));
	/* the path's bytes, 0xff as U+00FF */
	CHECK(t && strstr(t, "\"lost_files\":[\"/a\xc3\xbf\\\"b\"],"
			     "\"wal_damage\":null,\"interrupted\":{"
			     "\"operations\":0,\"inodes\":0}}\n"));
	free(t);
	free(r);
}

int main(void)
{
	test_conventions();
	test_stats();
	test_sync_and_gc();
	test_fsck();
	return CHECK_DONE();
}
