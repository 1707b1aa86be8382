/* SPDX-License-Identifier: MIT */
/* Helpers shared by the subcommands. */
#ifndef UDX_TOOLS_UTIL_H
#define UDX_TOOLS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" <-> 16 bytes */
int uuid_parse(const char *s, uint8_t out[16]);
void uuid_format(const uint8_t u[16], char out[37]);

/* A progress line on a terminal (stderr), nothing otherwise. */
void progress_show(const char *phase, uint64_t done, uint64_t total);
void progress_done(void);

#endif
