/* test_core_kernel_cache.c - the unpacked kernel kept between runs: what is
 * stored comes back whole for the same image only, a cache turned off
 * keeps nothing, and only the newest few images' files stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"
#include "kernel_cache.h"
#include "linux_boot.h"

static char dir[512];

static void set_cache_dir(const char *value)
{
#ifdef _WIN32
	_putenv_s("MINIVM_CACHE_DIR", value);
#else
	setenv("MINIVM_CACHE_DIR", value, 1);
#endif
}

static int setup(void **state)
{
	(void)state;
	char err[256];
	if (host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)) != 0)
		return -1;
	set_cache_dir(dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	host_runtime_dir_remove(dir); /* removes the files in it too */
	return 0;
}

/* A stand-in image and its "unpacked kernel": contents only matter as
 * bytes here (linux_load checks a cached kernel like any other). */
static void fill(uint8_t *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(seed * 131u + i * 7u);
}

/* The key of img as the core makes it: under the cache directory of the
 * moment (a test changes MINIVM_CACHE_DIR between calls). */
static const struct kernel_cache_key *key_of(const uint8_t *img, size_t size)
{
	static struct kernel_cache_key key;
	kernel_cache_key(img, size, &key);
	return &key;
}

static void test_same_image_only(void **state)
{
	(void)state;
	uint8_t img[4096], other[4096], vmlinux[100000];
	fill(img, sizeof(img), 1);
	fill(other, sizeof(other), 1);
	other[2000] ^= 1;
	fill(vmlinux, sizeof(vmlinux), 2);
	uint8_t *got = NULL;
	size_t got_size = 0;
	assert_int_equal(kernel_cache_load(key_of(img, sizeof(img)), 1 << 20, &got, &got_size), -1);

	kernel_cache_store(key_of(img, sizeof(img)), vmlinux, sizeof(vmlinux));
	if (!linux_host_decompress_available()) {
		/* This build unpacks nothing, so it keeps nothing. */
		assert_int_equal(kernel_cache_load(key_of(img, sizeof(img)), 1 << 20, &got, &got_size), -1);
		return;
	}
	assert_int_equal(kernel_cache_load(key_of(img, sizeof(img)), 1 << 20, &got, &got_size), 0);
	assert_int_equal(got_size, sizeof(vmlinux));
	assert_memory_equal(got, vmlinux, sizeof(vmlinux));
	free(got);
	/* One bit of the image differs: another key. */
	assert_int_equal(kernel_cache_load(key_of(other, sizeof(other)), 1 << 20, &got, &got_size), -1);
	/* Bigger than the guest's RAM below the hole: not taken. */
	assert_int_equal(kernel_cache_load(key_of(img, sizeof(img)), sizeof(vmlinux) - 1, &got, &got_size), -1);
	assert_null(got);
}

static void test_turned_off(void **state)
{
	(void)state;
	uint8_t img[64], vmlinux[64], *got = NULL;
	size_t got_size;
	fill(img, sizeof(img), 3);
	fill(vmlinux, sizeof(vmlinux), 4);
	set_cache_dir("");
	kernel_cache_store(key_of(img, sizeof(img)), vmlinux, sizeof(vmlinux));
	set_cache_dir(dir);
	assert_int_equal(kernel_cache_load(key_of(img, sizeof(img)), 1 << 20, &got, &got_size), -1);
}

static void test_newest_kept(void **state)
{
	(void)state;
	if (!linux_host_decompress_available())
		return; /* nothing kept: test_same_image_only */
	enum { IMAGES = KERNEL_CACHE_KEEP + 2 };
	uint8_t img[IMAGES][64], vmlinux[64], *got;
	size_t got_size;
	fill(vmlinux, sizeof(vmlinux), 5);
	for (unsigned i = 0; i < IMAGES; i++) {
		fill(img[i], sizeof(img[i]), 10 + i);
		kernel_cache_store(key_of(img[i], sizeof(img[i])), vmlinux, sizeof(vmlinux));
		host_sleep_ms(30); /* file times a few ms apart order the stores */
	}
	for (unsigned i = 0; i < IMAGES; i++) {
		got = NULL;
		int rc = kernel_cache_load(key_of(img[i], sizeof(img[i])), 1 << 20, &got, &got_size);
		assert_int_equal(rc, i < IMAGES - KERNEL_CACHE_KEEP ? -1 : 0);
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_image_only),
		cmocka_unit_test(test_turned_off),
		cmocka_unit_test(test_newest_kept),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
