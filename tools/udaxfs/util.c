/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int uuid_parse(const char *s, uint8_t out[16])
{
	int i = 0;

	while (*s && i < 32) {
		int hi;

		if (*s == '-') {
			s++;
			continue;
		}
		if (!isxdigit((unsigned char)*s))
			return -1;
		hi = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(hi << 4);
		else
			out[i / 2] |= (uint8_t)hi;
		i++;
		s++;
	}
	return (i == 32 && *s == '\0') ? 0 : -1;
}

void uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}

static int shown;
static struct timespec last;

void progress_show(const char *phase, uint64_t done, uint64_t total)
{
	struct timespec now;

	if (!isatty(STDERR_FILENO))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (shown && done < total && (now.tv_sec - last.tv_sec) * 1000000000L +
					     (now.tv_nsec - last.tv_nsec) < 100000000L)
		return;                 /* ten updates a second at most */
	last = now;
	shown = 1;
	fprintf(stderr, "\r%-12s %5.1f%%", phase, total ? 100.0 * (double)done / (double)total : 100.0);
	fflush(stderr);
}

void progress_done(void)
{
	if (shown)
		fprintf(stderr, "\r%30s\r", "");
	shown = 0;
}
