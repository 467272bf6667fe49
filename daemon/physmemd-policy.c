/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who may do what with a buffer. Root (uid 0) may do everything; otherwise
 * the owner's uid owns the buffer, and a shared buffer may be imported by the
 * uids and groups its owner listed.
 */
#include <stdlib.h>

#include "physmemd.h"

bool policy_is_owner(const struct peer *p, const struct buffer *b)
{
	return p->uid == b->owner_uid;
}

static bool in_groups(const struct peer *p, gid_t g)
{
	if (p->gid == g)
		return true;
	for (unsigned i = 0; i < p->n_groups; i++)
		if (p->groups[i] == g)
			return true;
	return false;
}

/* Is p one of these uids, or in one of these groups (primary or supplementary)? */
static bool ids_match(const struct peer *p, const uid_t *uids, unsigned n_uids, const gid_t *gids, unsigned n_gids)
{
	for (unsigned i = 0; i < n_uids; i++)
		if (uids[i] == p->uid)
			return true;
	for (unsigned i = 0; i < n_gids; i++)
		if (in_groups(p, gids[i]))
			return true;
	return false;
}

bool policy_may_import(const struct peer *p, const struct buffer *b)
{
	if (!b->name[0])
		return false;		/* only shared buffers can be imported */
	if (p->uid == 0 || policy_is_owner(p, b))
		return true;
	return ids_match(p, b->allow_uids, b->n_allow_uids, b->allow_gids, b->n_allow_gids);
}

bool policy_may_describe(const struct peer *p, const struct buffer *b)
{
	return p->uid == 0 || policy_is_owner(p, b) || policy_may_import(p, b);
}

bool policy_may_free(const struct peer *p, const struct buffer *b)
{
	return p->uid == 0 || policy_is_owner(p, b);
}

bool policy_may_see_addresses(const struct conf *c, const struct peer *p, const struct buffer *b)
{
	switch (c->address_policy) {
	case ADDRESS_POLICY_OWNER:
		return policy_may_describe(p, b);
	case ADDRESS_POLICY_ROOT:
		return p->uid == 0;
	case ADDRESS_POLICY_NONE:
		return false;
	}
	return false;
}

void policy_peer_done(struct peer *p)
{
	free(p->groups);
	p->groups = NULL;
	p->n_groups = 0;
}

/* Does rule name the device at a (with this vendor:product, -1 when unknown)? */
static bool rule_matches_device(const struct bind_rule *rule, const struct physmem_pci_address *a, int vendor,
				int product)
{
	if (rule->by_id)
		return vendor >= 0 && product >= 0 && rule->vendor == (unsigned)vendor &&
		       rule->product == (unsigned)product;
	return physmem_pci_address_equal(&rule->addr, a);
}

bool policy_may_bind(const struct conf *c, const struct peer *p, const struct physmem_pci_address *a,
		     int vendor, int product)
{
	if (p->uid == 0)
		return true;
	for (unsigned i = 0; i < c->n_bind_rules; i++)
		if (rule_matches_device(&c->bind_rules[i], a, vendor, product) &&
		    policy_principal_match(&c->bind_rules[i].who, p))
			return true;
	return false;
}

bool policy_principal_match(const struct principals *pr, const struct peer *p)
{
	if (p->uid == 0 || pr->all)
		return true;
	return ids_match(p, pr->uids, pr->n_uids, pr->gids, pr->n_gids);
}

/*
 * Pools are small and shared by everyone: by default (no pool-users) only
 * root may allocate from them, and pool-users names who else may.
 */
bool policy_may_use_pools(const struct conf *c, const struct peer *p)
{
	return policy_principal_match(&c->pool_users, p);
}
