/*
 * test_events.c - unit tests of sync/events.c (include/vsync/events.h).
 *
 * Covers:
 *  - ids 1, 2, 3 ... in emission order; each event is one JSON object
 *    starting with its id, with its type, fields and a ts;
 *  - vs_events_next: -EAGAIN at the newest; -ERANGE with the id to go on
 *    after once the ring has dropped what was asked for;
 *  - vs_events_after_seq: the newest change.applied at or below the seq;
 *    -ERANGE (replay what is kept) when there is none;
 *  - the wake function is called once per event, and never after it was
 *    cleared; paths that are not UTF-8 still make valid JSON.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vsync/events.h"

#include "unit_check.h"

static int wakes;

static void count_wake(void *arg)
{
	(void)arg;
	wakes++;
}

static int reset_setup(void **state)
{
	(void)state;
	vs_events_reset();
	vs_events_set_wake(NULL, NULL);
	wakes = 0;
	return 0;
}

/* The event after @after, parsed; fails the test if there is none. */
static json_t *next_event(uint64_t after, uint64_t *id)
{
	char *text = NULL;
	size_t len = 0;
	json_t *o;

	check_ret(0, vs_events_next(after, &text, &len, id),
		  "vs_events_next(%llu)", (unsigned long long)after);
	check_int(strlen(text), len, "length");
	o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o))
		fail_msg("not a JSON object: %s", text);
	if (strncmp(text, "{\"id\":", 6))
		fail_msg("does not start with its id: %s", text);
	free(text);
	return o;
}

static void test_order_and_fields(void **state)
{
	uint64_t id = 0;
	char *text = NULL;
	size_t len;
	json_t *o;

	(void)state;
	vs_events_set_wake(count_wake, NULL);
	vs_events_ready(42);
	vs_events_change(7, "update", "src/a.js", NULL, 3);
	vs_events_change(8, "rename", "b", "a\xff", -1);
	vs_events_saved("write", "x", 9, 2, true);
	vs_events_refused("write", "y", -EINVAL);
	vs_events_conflict("z", 10, 4, true);
	vs_events_backend("redis", false);
	check_int(7, wakes, "wakes");
	check_int(7, vs_events_last_id(), "last id");

	o = next_event(0, &id);
	check_int(1, id, "first id");
	check_str("ready", json_string_value(json_object_get(o, "type")),
		  "type");
	check_int(42, json_integer_value(json_object_get(o, "ms")), "ms");
	if (!json_is_string(json_object_get(o, "ts")))
		fail_msg("no ts");
	json_decref(o);
	o = next_event(1, &id);
	check_str("change.applied",
		  json_string_value(json_object_get(o, "type")), "type");
	check_int(7, json_integer_value(json_object_get(o, "seq")), "seq");
	check_str("src/a.js", json_string_value(json_object_get(o, "path")),
		  "path");
	check_int(3, json_integer_value(json_object_get(o, "lag_ms")), "lag");
	json_decref(o);
	o = next_event(2, &id);
	check_str("a?", json_string_value(json_object_get(o, "old_path")),
		  "old_path not UTF-8");
	check_bool(true, json_is_null(json_object_get(o, "lag_ms")),
		   "unknown lag is null");
	json_decref(o);
	o = next_event(4, &id);
	check_str("Invalid argument",
		  json_string_value(json_object_get(o, "error")), "error");
	json_decref(o);
	o = next_event(5, &id);
	check_str("this mount", json_string_value(json_object_get(o, "by")),
		  "by");
	json_decref(o);
	o = next_event(6, &id);
	check_str("backend.down", json_string_value(json_object_get(o, "type")),
		  "type");
	json_decref(o);
	check_ret(-EAGAIN, vs_events_next(7, &text, &len, &id), "at the end");

	vs_events_set_wake(NULL, NULL);
	vs_events_ready(1);
	check_int(7, wakes, "no wake once cleared");
}

static void test_ring(void **state)
{
	uint64_t id = 0, at = 0;
	char *text = NULL;
	size_t len;
	json_t *o;

	(void)state;
	check_ret(-ERANGE, vs_events_after_seq(5, &at), "after_seq, empty");
	check_int(0, at, "replay from the start");
	for (int i = 1; i <= VS_EVENTS_RING + 10; i++)
		vs_events_change(i, "update", "f", NULL, 0);
	check_ret(-ERANGE, vs_events_next(3, &text, &len, &id),
		  "asking for dropped events");
	check_int(10, id, "go on after the oldest kept minus one");
	o = next_event(10, &id);
	check_int(11, id, "the oldest kept");
	check_int(11, json_integer_value(json_object_get(o, "seq")), "seq");
	json_decref(o);
	check_ret(0, vs_events_after_seq(500, &at), "after_seq 500");
	check_int(500, at, "resume after change 500's event");
	check_ret(-ERANGE, vs_events_after_seq(5, &at),
		  "after_seq older than the ring");
	check_int(10, at, "replay what is kept");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_order_and_fields, reset_setup),
	    cmocka_unit_test_setup(test_ring, reset_setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
