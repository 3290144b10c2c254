package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Typed read queries. Every read of tenant data names the tenant, and keys are built from it, so a read
// cannot wander into another tenant's records. A missing record is ErrNotFound.

func getJSON[T any](s *Store, key []byte) (T, error) {
	var v T
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error { return json.Unmarshal(b, &v) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return v, ErrNotFound
	}
	return v, err
}

// getVia follows an index entry to the record it names.
func getVia[T any](s *Store, index []byte, record func(id string) []byte) (T, error) {
	var v T
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(index)
		if err != nil {
			return err
		}
		id, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		it, err = txn.Get(record(string(id)))
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error { return json.Unmarshal(b, &v) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return v, ErrNotFound
	}
	return v, err
}

// list decodes every record under prefix, starting after the key suffix `after` (for paging), at most
// limit of them (0: all).
func list[T any](s *Store, prefix []byte, after string, limit int) ([]T, error) {
	start := prefix
	if after != "" {
		start = append(append(bytes.Clone(prefix), after...), 0)
	}
	return scan[T](s, prefix, start, false, limit)
}

// scan decodes records under prefix from the key start on, in key order or in reverse, at most limit.
func scan[T any](s *Store, prefix, start []byte, reverse bool, limit int) ([]T, error) {
	var out []T
	err := s.view(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix, opt.Reverse = prefix, reverse
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			var v T
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &v) }); err != nil {
				return err
			}
			out = append(out, v)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// keySuffixes lists the last path segment of every key under prefix.
func (s *Store) keySuffixes(prefix []byte) ([]string, error) {
	var out []string
	err := s.view(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = prefix
		opt.PrefetchValues = false
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()[len(prefix):]))
		}
		return nil
	})
	return out, err
}

// Tenant reads one tenant.
func (s *Store) Tenant(id string) (Tenant, error) { return getJSON[Tenant](s, keyTenantRecord(id)) }

// Tenants lists every tenant, in id order.
func (s *Store) Tenants() ([]Tenant, error) {
	ids, err := s.keySuffixes([]byte("sys/tenants/"))
	if err != nil {
		return nil, err
	}
	out := make([]Tenant, 0, len(ids))
	for _, id := range ids {
		t, err := s.Tenant(id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// User reads one user of a tenant.
func (s *Store) User(tenant, id string) (User, error) { return getJSON[User](s, keyUser(tenant, id)) }

// UserByEmail finds a tenant's user by email, case-insensitively.
func (s *Store) UserByEmail(tenant, email string) (User, error) {
	return getVia[User](s, keyEmailIndex(tenant, NormalizeEmail(email)), func(id string) []byte { return keyUser(tenant, id) })
}

// UserByUsername finds a tenant's user by username.
func (s *Store) UserByUsername(tenant, name string) (User, error) {
	return getVia[User](s, keyUsernameIndex(tenant, name), func(id string) []byte { return keyUser(tenant, id) })
}

// Users lists a tenant's users in id order, after the id `after`, at most limit (0: all).
func (s *Store) Users(tenant, after string, limit int) ([]User, error) {
	return list[User](s, tenantPrefixKind(tenant, "user"), after, limit)
}

// Group reads one group of a tenant.
func (s *Store) Group(tenant, id string) (Group, error) {
	return getJSON[Group](s, keyGroup(tenant, id))
}

// GroupByName finds a tenant's group by name.
func (s *Store) GroupByName(tenant, name string) (Group, error) {
	return getVia[Group](s, keyGroupName(tenant, name), func(id string) []byte { return keyGroup(tenant, id) })
}

// Groups lists a tenant's groups.
func (s *Store) Groups(tenant string) ([]Group, error) {
	return list[Group](s, tenantPrefixKind(tenant, "group"), "", 0)
}

// GroupMembers lists the ids of a group's members.
func (s *Store) GroupMembers(tenant, group string) ([]string, error) {
	return s.keySuffixes([]byte("t/" + tenant + "/member/" + group + "/"))
}

// UserGroups lists the ids of the groups a user is in.
func (s *Store) UserGroups(tenant, user string) ([]string, error) {
	return s.keySuffixes([]byte("t/" + tenant + "/memberof/" + user + "/"))
}

// App reads one app of a tenant by its id.
func (s *Store) App(tenant, id string) (App, error) { return getJSON[App](s, keyApp(tenant, id)) }

// AppByClientID finds a tenant's app by client_id.
func (s *Store) AppByClientID(tenant, clientID string) (App, error) {
	return getVia[App](s, keyClientIndex(tenant, clientID), func(id string) []byte { return keyApp(tenant, id) })
}

// AppByName finds a tenant's app by name.
func (s *Store) AppByName(tenant, name string) (App, error) {
	return getVia[App](s, keyAppName(tenant, name), func(id string) []byte { return keyApp(tenant, id) })
}

// Apps lists a tenant's apps.
func (s *Store) Apps(tenant string) ([]App, error) {
	return list[App](s, tenantPrefixKind(tenant, "app"), "", 0)
}

// SigningKeys lists a tenant's signing keys.
func (s *Store) SigningKeys(tenant string) ([]SigningKey, error) {
	return list[SigningKey](s, tenantPrefixKind(tenant, "key"), "", 0)
}

// Routes lists a tenant's proxy routes.
func (s *Store) Routes(tenant string) ([]Route, error) {
	return list[Route](s, tenantPrefixKind(tenant, "route"), "", 0)
}

// RouteByHost finds the route for a Host header, in whichever tenant has it.
func (s *Store) RouteByHost(host string) (Route, error) {
	host = strings.ToLower(host)
	return getVia[Route](s, keyHost(host), func(t string) []byte { return keyRoute(t, host) })
}

// IdentityProviders lists a tenant's identity providers.
func (s *Store) IdentityProviders(tenant string) ([]IdentityProvider, error) {
	return list[IdentityProvider](s, tenantPrefixKind(tenant, "idp"), "", 0)
}

// Extensions lists a tenant's extensions.
func (s *Store) Extensions(tenant string) ([]Extension, error) {
	return list[Extension](s, tenantPrefixKind(tenant, "ext"), "", 0)
}

// Blob reads a tenant's stored Wasm module by content hash: its header, then its chunks, in one read
// transaction.
func (s *Store) Blob(tenant, sha string) ([]byte, error) {
	var b []byte
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(keyBlob(tenant, sha))
		if err != nil {
			return err
		}
		head, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		var h blobHeader
		if err := json.Unmarshal(head, &h); err != nil || h.Chunks < 0 || h.Size < 0 {
			return fmt.Errorf("stored module %s of tenant %s: damaged header", sha, tenant)
		}
		b = make([]byte, 0, h.Size)
		for i := range h.Chunks {
			it, err := txn.Get(keyBlobChunk(tenant, sha, i))
			if err != nil {
				return fmt.Errorf("stored module %s of tenant %s: chunk %d: %w", sha, tenant, i, err)
			}
			if err := it.Value(func(v []byte) error { b = append(b, v...); return nil }); err != nil {
				return err
			}
		}
		if len(b) != h.Size {
			return fmt.Errorf("stored module %s of tenant %s: %d bytes, the header says %d", sha, tenant, len(b), h.Size)
		}
		return nil
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

// Session reads one session.
func (s *Store) Session(tenant, id string) (Session, error) {
	return getJSON[Session](s, keySession(tenant, id))
}

// Sessions lists a tenant's sessions, ended ones included until they are removed.
func (s *Store) Sessions(tenant string) ([]Session, error) {
	return list[Session](s, tenantPrefixKind(tenant, "session"), "", 0)
}

// RefreshFamily reads one refresh-token family.
func (s *Store) RefreshFamily(tenant, id string) (RefreshFamily, error) {
	return getJSON[RefreshFamily](s, keyRefresh(tenant, id))
}

// Nodes lists the cluster's recorded nodes.
func (s *Store) Nodes() ([]Node, error) { return list[Node](s, []byte("sys/node/"), "", 0) }

// AuditEvents lists a tenant's newest audit events, at most limit of them (0: all), oldest first.
func (s *Store) AuditEvents(tenant string, limit int) ([]AuditEvent, error) {
	prefix := tenantPrefixKind(tenant, "audit")
	out, err := scan[AuditEvent](s, prefix, append(bytes.Clone(prefix), 0xff), true, limit)
	slices.Reverse(out)
	return out, err
}
