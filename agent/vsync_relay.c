/*
 * vsync_relay.c - the vsync-relay program: options, signals, logging;
 * the work is vs_relay_run() (sync/relay.c, include/vsync/relay.h).
 *
 * vsync-relay turns committed changes in PostgreSQL into Redis cache
 * entries (blobs, the manifest hash), one stream entry per change (entry
 * id = change seq) and a pub/sub event. It keeps no state of its own:
 * run as many as you like, anywhere; each change is published exactly
 * once. Log lines are key=value events on stderr.
 *
 * Exit status: 0 stopped by SIGTERM/SIGINT, or --once done; 1 a backend
 * failed during --once or could not be set up; 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/log.h"
#include "vsync/relay.h"
#include "vsync/util.h"
#include "vsync/sign.h"
#include "vsync/banned.h"

#ifndef VSYNC_VERSION
#define VSYNC_VERSION "unknown"
#endif

#define RELAY_BLOB_MAX_LIMIT ((512ull << 20) - 64) /* Redis string limit */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: vsync-relay [OPTIONS]\n"
	    "\n"
	    "Publish committed vsync changes from PostgreSQL to Redis: "
	    "content blobs,\n"
	    "the manifest hash, the events stream (one entry per change, "
	    "id <seq>-0)\n"
	    "and a pub/sub event on project.<id>.files. Stateless; several "
	    "may run\n"
	    "at once (each change is published exactly once).\n"
	    "\n"
	    "  --pg CONNINFO        PostgreSQL URL or key=value string\n"
	    "                       (default: $VSYNC_PG_URL, then libpq's "
	    "PG* defaults)\n"
	    "  --redis URL          redis://[[user]:password@]host[:port][/db]"
	    "\n"
	    "                       (default: $VSYNC_REDIS_URL)\n"
	    "  --poll-interval MS   scan every project this often, besides "
	    "NOTIFY\n"
	    "                       wake-ups (default 5000)\n"
	    "  --batch N            changes read per query (default 500)\n"
	    "  --blob-max BYTES     larger content is not put in Redis; "
	    "agents read\n"
	    "                       it from PostgreSQL (default 1073741824)\n"
	    "  --blob-ttl S         TTL of cached content (default 86400)\n"
	    "  --stream-maxlen N    approximate length the events stream is "
	    "trimmed\n"
	    "                       to (XADD MAXLEN ~; default 100000)\n"
	    "  --timeout MS         deadline of each backend call (default "
	    "10000)\n"
	    "  --sign-key FILE      sign stream entries and manifest values "
	    "with this\n"
	    "                       Ed25519 private key (PEM; `vsyncctl "
	    "keygen`)\n"
	    "                       (default: $VSYNC_SIGN_KEY; none: "
	    "unsigned)\n"
	    "  --once               publish what is pending for every "
	    "project, exit\n"
	    "  --log-format FMT     logfmt (default) or json: one object per "
	    "line\n"
	    "                       (default: $VSYNC_LOG_FORMAT)\n"
	    "  -v, --verbose        debug log lines\n"
	    "  --help, --version\n"
	    "\n"
	    "Exit status: 0 stopped (SIGTERM/SIGINT) or --once done; 1 a "
	    "backend\n"
	    "failed during --once, or bad setup; 2 usage.\n",
	    f);
}

/* Parse a decimal in [min, max] for option @name. 0 or -EINVAL (said). */
static int parse_num(const char *name, const char *s, unsigned long long min,
		     unsigned long long max, unsigned long long *out)
{
	uint64_t v;

	if (vs_parse_u64(&v, s, 10, min, max) < 0) {
		fprintf(stderr, "vsync-relay: invalid %s '%s' (%llu..%llu)\n",
			name, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	enum {
		O_PG = 256,
		O_REDIS,
		O_POLL,
		O_BATCH,
		O_BLOB_MAX,
		O_BLOB_TTL,
		O_MAXLEN,
		O_TIMEOUT,
		O_ONCE,
		O_SIGN_KEY,
		O_LOG_FORMAT,
		O_HELP,
		O_VERSION,
	};
	static const struct option opts[] = {
	    {"pg", required_argument, NULL, O_PG},
	    {"redis", required_argument, NULL, O_REDIS},
	    {"poll-interval", required_argument, NULL, O_POLL},
	    {"batch", required_argument, NULL, O_BATCH},
	    {"blob-max", required_argument, NULL, O_BLOB_MAX},
	    {"blob-ttl", required_argument, NULL, O_BLOB_TTL},
	    {"stream-maxlen", required_argument, NULL, O_MAXLEN},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"once", no_argument, NULL, O_ONCE},
	    {"sign-key", required_argument, NULL, O_SIGN_KEY},
	    {"log-format", required_argument, NULL, O_LOG_FORMAT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, O_HELP},
	    {"version", no_argument, NULL, O_VERSION},
	    {NULL, 0, NULL, 0},
	};
	struct vs_relay_config cfg = {
	    .timeout_ms = 10000,
	    .poll_interval_ms = 5000,
	    .batch = 500,
	    .blob_max = 1ull << 30,
	    .blob_ttl_s = 86400,
	    .stream_maxlen = 100000,
	    .stop = &stop_requested,
	};
	struct sigaction sa;
	sigset_t stop_set;
	const char *sign_key = getenv("VSYNC_SIGN_KEY");
	struct vs_sign_key *key = NULL;
	const char *log_format = getenv("VSYNC_LOG_FORMAT");
	unsigned long long v;
	int o, r;

	vs_log_set_prog("vsync-relay");
	cfg.pg_conninfo = getenv("VSYNC_PG_URL");
	cfg.redis_url = getenv("VSYNC_REDIS_URL");
	while ((o = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		r = 0;
		switch (o) {
		case O_PG:
			cfg.pg_conninfo = optarg;
			break;
		case O_REDIS:
			cfg.redis_url = optarg;
			break;
		case O_POLL:
			r = parse_num("--poll-interval", optarg, 10, 3600000,
				      &v);
			cfg.poll_interval_ms = (int)v;
			break;
		case O_BATCH:
			r = parse_num("--batch", optarg, 1, 100000, &v);
			cfg.batch = (int)v;
			break;
		case O_BLOB_MAX:
			r = parse_num("--blob-max", optarg, 0,
				      RELAY_BLOB_MAX_LIMIT, &v);
			cfg.blob_max = v;
			break;
		case O_BLOB_TTL:
			r = parse_num("--blob-ttl", optarg, 1, 100000000, &v);
			cfg.blob_ttl_s = (int)v;
			break;
		case O_MAXLEN:
			r = parse_num("--stream-maxlen", optarg, 1, 1000000000,
				      &v);
			cfg.stream_maxlen = (long)v;
			break;
		case O_TIMEOUT:
			r = parse_num("--timeout", optarg, 1, 3600000, &v);
			cfg.timeout_ms = (int)v;
			break;
		case O_ONCE:
			cfg.once = 1;
			break;
		case O_SIGN_KEY:
			sign_key = optarg;
			break;
		case O_LOG_FORMAT:
			log_format = optarg;
			break;
		case 'v':
			vs_log_set_level(VS_LOG_DEBUG);
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		case O_VERSION:
			printf("vsync-relay %s\n", VSYNC_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (r < 0)
			return 2;
	}
	if (log_format && *log_format) {
		r = vs_log_format_parse(log_format);
		if (r < 0) {
			fprintf(stderr,
				"vsync-relay: --log-format takes logfmt or "
				"json, not '%s'\n",
				log_format);
			return 2;
		}
		vs_log_set_format((enum vs_log_format)r);
	}
	if (optind < argc) {
		fprintf(stderr,
			"vsync-relay: unexpected argument '%s' (see "
			"--help)\n",
			argv[optind]);
		return 2;
	}
	if (!cfg.redis_url || !*cfg.redis_url) {
		fprintf(stderr, "vsync-relay: no Redis: use --redis URL or set "
				"VSYNC_REDIS_URL\n");
		return 2;
	}

	if (sign_key && *sign_key) {
		if (vs_sign_key_load_private(&key, sign_key) < 0)
			return 1;
		cfg.sign_key = key;
	} else {
		vs_warn("no --sign-key: stream entries and manifests are "
			"published unsigned; mounts given a verify key will "
			"ignore them and read PostgreSQL");
	}

	/* Stop signals stay blocked except while the relay waits, so a
	 * change being published is always finished (relay.h). */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigprocmask(SIG_BLOCK, &stop_set, NULL);
	cfg.stop_signals = &stop_set;

	r = vs_relay_run(&cfg);
	if (r == 0 && stop_requested)
		vs_info("relay stopped");
	vs_sign_key_free(key);
	return r < 0 ? 1 : 0;
}
