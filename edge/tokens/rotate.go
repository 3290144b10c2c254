package tokens

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"postern.dev/postern/directory"
)

// RotationOps returns the directory ops that rotate a tenant's keys for alg ("" = ES256), and a line
// for each change, for people.
//
// Rotation takes two calls, so that a key is published before it signs (relying parties cache the JWK
// Set):
//  1. With no next key for alg, it creates one, published but not signing.
//  2. With a next key, it promotes that key to active, demotes the active key to retired with NotAfter =
//     now + maxTokenLifetime (the old key stays published and accepted until every token it signed has
//     expired), and creates a new next key, so the following rotation is again a single step.
//
// Retired keys of any alg past their NotAfter are deleted in the same ops. Pass as maxTokenLifetime the
// longest lifetime of any token the tenant's keys sign, plus [Leeway].
//
// RotationOps reads the store and randomness, and seals new keys with kek: proposers call it, and the ops
// go into one command. Two rotations planned from the same state and both committed break nothing: the
// second promotion repeats the first, and the extra next key is promoted by a later rotation.
func RotationOps(store *directory.Store, kek *directory.KEK, tenant, alg string, now time.Time, maxTokenLifetime time.Duration) ([]directory.Op, []string, error) {
	if alg == "" {
		alg = DefaultAlg
	}
	if !slices.Contains(Algs, alg) {
		return nil, nil, fmt.Errorf("rotating keys: algorithm %q is not one of %v", alg, Algs)
	}
	if maxTokenLifetime < 0 {
		return nil, nil, fmt.Errorf("rotating keys: the token lifetime %v is negative", maxTokenLifetime)
	}
	if _, err := store.Tenant(tenant); err != nil {
		return nil, nil, fmt.Errorf("rotating keys of tenant %q: %w", tenant, err)
	}
	keys, err := store.SigningKeys(tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("rotating keys of tenant %q: reading its keys: %w", tenant, err)
	}
	slices.SortFunc(keys, func(a, b directory.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	var ops []directory.Op
	var changes []string
	var next *directory.SigningKey
	var active []directory.SigningKey
	for i, k := range keys {
		switch {
		case k.State == directory.KeyRetired && !k.NotAfter.IsZero() && now.After(k.NotAfter):
			ops = append(ops, directory.MakeOp(directory.OpKeyDelete, directory.Ref{Tenant: tenant, ID: k.ID}))
			changes = append(changes, fmt.Sprintf("deleted retired %s key %s (past its not_after %s)", k.Alg, k.ID, k.NotAfter.UTC().Format(time.RFC3339)))
		case k.Alg != alg:
		case k.State == directory.KeyNext && next == nil: // the oldest next key has been published longest
			next = &keys[i]
		case k.State == directory.KeyActive:
			active = append(active, k)
		}
	}
	if next != nil {
		// A put without Private keeps the sealed private half already stored, and CreatedAt.
		promoted := directory.SigningKey{ID: next.ID, Tenant: tenant, Alg: alg, Public: next.Public, State: directory.KeyActive}
		ops = append(ops, directory.MakeOp(directory.OpKeyPut, promoted))
		changes = append(changes, fmt.Sprintf("activated %s key %s: it signs from now on", alg, next.ID))
		notAfter := now.Add(maxTokenLifetime).UTC()
		for _, k := range active {
			retired := directory.SigningKey{ID: k.ID, Tenant: tenant, Alg: k.Alg, Public: k.Public, State: directory.KeyRetired, NotAfter: notAfter}
			ops = append(ops, directory.MakeOp(directory.OpKeyPut, retired))
			changes = append(changes, fmt.Sprintf("retired %s key %s: published and accepted until %s", k.Alg, k.ID, notAfter.Format(time.RFC3339)))
		}
	}
	k, err := directory.NewSigningKey(kek, tenant, alg, directory.KeyNext)
	if err != nil {
		return nil, nil, fmt.Errorf("rotating keys of tenant %q: %w", tenant, err)
	}
	ops = append(ops, directory.MakeOp(directory.OpKeyPut, k))
	changes = append(changes, fmt.Sprintf("published next %s key %s: it signs from the next rotation", alg, k.ID))
	return ops, changes, nil
}
