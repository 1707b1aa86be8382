/* SPDX-License-Identifier: MIT */
/* Size parsing and formatting. */
#include "testutil.h"

static void test_parse_ok(void **state)
{
	uint64_t v;

	assert_int_equal(udx_parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(udx_parse_size("64K", &v), 0);
	assert_true(v == 64ull << 10);
	assert_int_equal(udx_parse_size("2m", &v), 0);
	assert_true(v == 2ull << 20);
	assert_int_equal(udx_parse_size("1G", &v), 0);
	assert_true(v == 1ull << 30);
	assert_int_equal(udx_parse_size("3TiB", &v), 0);
	assert_true(v == 3ull << 40);
	assert_int_equal(udx_parse_size("5MB", &v), 0);
	assert_true(v == 5ull << 20);
	assert_int_equal(udx_parse_size("0", &v), 0);
	assert_true(v == 0);
}

static void test_parse_bad(void **state)
{
	uint64_t v;

	assert_int_equal(udx_parse_size("", &v), -EINVAL);
	assert_int_equal(udx_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(udx_parse_size("G", &v), -EINVAL);
	assert_int_equal(udx_parse_size("-1", &v), -EINVAL);
	assert_int_equal(udx_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(udx_parse_size("1Gx", &v), -EINVAL);
	assert_int_equal(udx_parse_size("1 G", &v), -EINVAL);
	assert_int_equal(udx_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(udx_parse_size("16777216T", &v), -ERANGE);
}

static void test_format(void **state)
{
	char buf[32];

	assert_string_equal(udx_format_size(512, buf, sizeof(buf)), "512 B");
	assert_string_equal(udx_format_size(1ull << 30, buf, sizeof(buf)), "1 GiB");
	assert_string_equal(udx_format_size(3ull << 29, buf, sizeof(buf)), "1.5 GiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
