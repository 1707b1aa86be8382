/* SPDX-License-Identifier: MIT */
/* Internal: set the per-thread error message (see udx_errmsg()). */
#ifndef UDX_BASE_ERR_H
#define UDX_BASE_ERR_H

/*
 * udx_err() - record a message for udx_errmsg() and return @err (a negative
 * errno), so that a failure reads: return udx_err(-EINVAL, "...", ...);
 */
int udx_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clear the message (a call that succeeds after trying alternatives). */
void udx_err_clear(void);

#endif
