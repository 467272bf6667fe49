/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Who may do what: policy_* of physmemd-policy.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "physmemd.h"

static struct buffer mkbuf(uid_t owner, const char *name)
{
	struct buffer b;

	memset(&b, 0, sizeof(b));
	b.owner_uid = owner;
	if (name)
		strcpy(b.name, name);
	return b;
}

static struct peer mkpeer(uid_t uid, gid_t gid)
{
	struct peer p;

	memset(&p, 0, sizeof(p));
	p.uid = uid;
	p.gid = gid;
	return p;
}

static void test_owner(void **state)
{
	struct buffer b = mkbuf(1000, NULL);
	struct peer owner = mkpeer(1000, 1000), other = mkpeer(1001, 1000);

	(void)state;
	assert_true(policy_is_owner(&owner, &b));
	assert_false(policy_is_owner(&other, &b));
	assert_true(policy_may_describe(&owner, &b));
	assert_true(policy_may_free(&owner, &b));
	assert_false(policy_may_describe(&other, &b));
	assert_false(policy_may_free(&other, &b));
	/* Same primary group gives nothing by itself. */
	assert_false(policy_may_import(&other, &b));
}

static void test_root(void **state)
{
	struct buffer b = mkbuf(1000, "shared");
	struct buffer unnamed = mkbuf(1000, NULL);
	struct peer root = mkpeer(0, 0);

	(void)state;
	assert_false(policy_is_owner(&root, &b));
	assert_true(policy_may_describe(&root, &b));
	assert_true(policy_may_free(&root, &b));
	assert_true(policy_may_import(&root, &b));
	assert_true(policy_may_describe(&root, &unnamed));
	assert_true(policy_may_free(&root, &unnamed));
}

static void test_unnamed_never_imported(void **state)
{
	struct buffer b = mkbuf(1000, NULL);
	struct peer owner = mkpeer(1000, 1000), allowed = mkpeer(2000, 2000), root = mkpeer(0, 0);

	(void)state;
	b.n_allow_uids = 1;
	b.allow_uids[0] = 2000;
	b.n_allow_gids = 1;
	b.allow_gids[0] = 2000;
	assert_false(policy_may_import(&owner, &b));
	assert_false(policy_may_import(&allowed, &b));
	assert_false(policy_may_import(&root, &b));
	assert_false(policy_may_describe(&allowed, &b));
}

static void test_allowed_uid(void **state)
{
	struct buffer b = mkbuf(1000, "cam");
	struct peer owner = mkpeer(1000, 1000), a = mkpeer(2000, 2000), c = mkpeer(3000, 3000);

	(void)state;
	assert_true(policy_may_import(&owner, &b));
	assert_false(policy_may_import(&a, &b));
	b.n_allow_uids = 2;
	b.allow_uids[0] = 4000;
	b.allow_uids[1] = 2000;
	assert_true(policy_may_import(&a, &b));
	assert_true(policy_may_describe(&a, &b));
	assert_false(policy_may_free(&a, &b));
	assert_false(policy_may_import(&c, &b));
	/* Entries past n_allow_uids do not count. */
	b.allow_uids[2] = 3000;
	assert_false(policy_may_import(&c, &b));
	/* A uid in the group list is not a gid. */
	b.n_allow_uids = 0;
	b.n_allow_gids = 1;
	b.allow_gids[0] = 2001;
	assert_false(policy_may_import(&a, &b));
}

static void test_allowed_gid(void **state)
{
	struct buffer b = mkbuf(1000, "cam");
	struct peer primary = mkpeer(2000, 500), supplementary = mkpeer(2001, 2001), none = mkpeer(2002, 2002);
	gid_t groups[3] = { 10, 20, 500 };

	(void)state;
	b.n_allow_gids = 1;
	b.allow_gids[0] = 500;
	supplementary.n_groups = 3;
	supplementary.groups = groups;
	none.n_groups = 2;
	none.groups = groups;	/* 500 is beyond n_groups: ignored */

	assert_true(policy_may_import(&primary, &b));
	assert_true(policy_may_import(&supplementary, &b));
	assert_true(policy_may_describe(&supplementary, &b));
	assert_false(policy_may_free(&supplementary, &b));
	assert_false(policy_may_import(&none, &b));
	assert_false(policy_may_describe(&none, &b));
}

static void test_addresses(void **state)
{
	struct buffer b = mkbuf(1000, "cam");
	struct peer owner = mkpeer(1000, 1000), root = mkpeer(0, 0), allowed = mkpeer(2000, 2000),
		    other = mkpeer(3000, 3000);
	struct conf c;

	(void)state;
	conf_defaults(&c);
	b.n_allow_uids = 1;
	b.allow_uids[0] = 2000;

	assert_int_equal(c.address_policy, ADDRESS_POLICY_OWNER);
	assert_true(policy_may_see_addresses(&c, &owner, &b));
	assert_true(policy_may_see_addresses(&c, &root, &b));
	assert_true(policy_may_see_addresses(&c, &allowed, &b));
	assert_false(policy_may_see_addresses(&c, &other, &b));

	c.address_policy = ADDRESS_POLICY_ROOT;
	assert_false(policy_may_see_addresses(&c, &owner, &b));
	assert_true(policy_may_see_addresses(&c, &root, &b));
	assert_false(policy_may_see_addresses(&c, &allowed, &b));
	assert_false(policy_may_see_addresses(&c, &other, &b));

	c.address_policy = ADDRESS_POLICY_NONE;
	assert_false(policy_may_see_addresses(&c, &owner, &b));
	assert_false(policy_may_see_addresses(&c, &root, &b));
	assert_false(policy_may_see_addresses(&c, &allowed, &b));
	assert_false(policy_may_see_addresses(&c, &other, &b));

	c.address_policy = (enum address_policy)42;
	assert_false(policy_may_see_addresses(&c, &root, &b));
}

/* bind-device: default deny; a rule names a device (address or ids) and users or groups. */
static void test_bind(void **state)
{
	struct conf c;
	struct peer root = mkpeer(0, 0), nobody = mkpeer(65534, 65534), other = mkpeer(1000, 1000);
	gid_t video = 44;
	struct peer member = { .uid = 1001, .gid = 1001, .n_groups = 1, .groups = &video };
	struct physmem_pci_address edu = { 0, 0, 3, 0 }, other_dev = { 0, 0, 4, 0 }, far = { 1, 0, 3, 0 };

	(void)state;
	conf_defaults(&c);
	/* No rule: only root. */
	assert_true(policy_may_bind(&c, &root, &edu, 0x1234, 0x11e8));
	assert_false(policy_may_bind(&c, &nobody, &edu, 0x1234, 0x11e8));

	assert_int_equal(conf_set(&c, "bind-device", "0000:00:03.0 uid:65534"), 0);
	assert_int_equal(conf_set(&c, "bind-device", "8086:10d3 gid:44"), 0);
	assert_true(policy_may_bind(&c, &nobody, &edu, 0x1234, 0x11e8));
	assert_true(policy_may_bind(&c, &nobody, &edu, -1, -1));
	assert_false(policy_may_bind(&c, &other, &edu, 0x1234, 0x11e8));
	assert_false(policy_may_bind(&c, &nobody, &other_dev, 0x1234, 0x11e8));
	assert_false(policy_may_bind(&c, &nobody, &far, 0x1234, 0x11e8));	/* another domain */
	/* By ids, for a group (supplementary). */
	assert_true(policy_may_bind(&c, &member, &other_dev, 0x8086, 0x10d3));
	assert_false(policy_may_bind(&c, &member, &other_dev, 0x8086, 0x10d4));
	assert_false(policy_may_bind(&c, &member, &other_dev, -1, -1));		/* ids unknown */
	assert_false(policy_may_bind(&c, &member, &edu, 0x1234, 0x11e8));
	assert_false(policy_may_bind(&c, &nobody, &other_dev, 0x8086, 0x10d3));
}

/* pool-users: nobody but root by default; then the uids and groups it names, or everyone. */
static void test_pool_users(void **state)
{
	struct conf c;
	struct peer root = mkpeer(0, 0), a = mkpeer(1000, 1000), b = mkpeer(2000, 2000), m = mkpeer(3000, 3000);
	gid_t groups[] = { 44 };

	(void)state;
	conf_defaults(&c);
	assert_true(policy_may_use_pools(&c, &root));
	assert_false(policy_may_use_pools(&c, &a));
	c.pool_users.uids[c.pool_users.n_uids++] = 1000;
	c.pool_users.gids[c.pool_users.n_gids++] = 44;
	assert_true(policy_may_use_pools(&c, &a));
	assert_false(policy_may_use_pools(&c, &b));
	m.groups = groups;
	m.n_groups = 1;
	assert_true(policy_may_use_pools(&c, &m));
	b.gid = 44;
	assert_true(policy_may_use_pools(&c, &b));
	b.gid = 2000;
	c.pool_users.all = true;
	assert_true(policy_may_use_pools(&c, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_unnamed_never_imported),
		cmocka_unit_test(test_allowed_uid),
		cmocka_unit_test(test_allowed_gid),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_bind),
		cmocka_unit_test(test_pool_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
