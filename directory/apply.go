package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// applier carries one command through its ops inside one Badger transaction. Handlers check everything
// before they write, and any refusal discards the whole transaction, so a command is all or nothing.
type applier struct {
	txn     *badger.Txn
	cmd     Command
	index   uint64
	audits  int
	changes []Change
	// chunk is the size of the pieces a Wasm module is stored in, which suits the store (see blobChunk).
	chunk int
}

type handler func(a *applier, body json.RawMessage) (any, error)

// handlers is the state machine's registry: one entry per op kind. Adding a kind is adding a line here.
var handlers = map[string]handler{
	OpTenantCreate:     applyTenantCreate,
	OpTenantUpdate:     applyTenantUpdate,
	OpTenantDelete:     applyTenantDelete,
	OpUserCreate:       applyUserCreate,
	OpUserUpdate:       applyUserUpdate,
	OpUserDelete:       applyUserDelete,
	OpCredentialPut:    applyCredentialPut,
	OpCredentialDelete: applyCredentialDelete,
	OpGroupCreate:      applyGroupCreate,
	OpGroupUpdate:      applyGroupUpdate,
	OpGroupDelete:      applyGroupDelete,
	OpMemberAdd:        applyMemberAdd,
	OpMemberRemove:     applyMemberRemove,
	OpAppCreate:        applyAppCreate,
	OpAppUpdate:        applyAppUpdate,
	OpAppDelete:        applyAppDelete,
	OpKeyPut:           applyKeyPut,
	OpKeyDelete:        applyKeyDelete,
	OpRoutePut:         applyRoutePut,
	OpRouteDelete:      applyRouteDelete,
	OpIdPPut:           applyIdPPut,
	OpIdPDelete:        applyIdPDelete,
	OpExtensionPut:     applyExtensionPut,
	OpExtensionDelete:  applyExtensionDelete,
	OpSessionPut:       applySessionPut,
	OpSessionRevoke:    applySessionRevoke,
	OpRefreshPut:       applyRefreshPut,
	OpRefreshRevoke:    applyRefreshRevoke,
	OpNodePut:          applyNodePut,
	OpNodeDelete:       applyNodeDelete,
	OpCodeRedeem:       applyCodeRedeem,
	OpRefreshRotate:    applyRefreshRotate,
	OpTokenRevoke:      applyTokenRevoke,
	OpSignUpStart:      applySignUpStart,
	OpSignUpComplete:   applySignUpComplete,
	OpExtensionLog:     applyExtensionLog,
}

func decode[T any](body json.RawMessage) (T, error) {
	var v T
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return v, invalid("malformed operation: %v", err)
	}
	return v, nil
}

func (a *applier) now() time.Time { return a.cmd.Time }

func (a *applier) get(key []byte, v any) (bool, error) {
	it, err := a.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func (a *applier) getRaw(key []byte) ([]byte, error) {
	it, err := a.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return it.ValueCopy(nil)
}

func (a *applier) exists(key []byte) (bool, error) {
	_, err := a.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (a *applier) put(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.txn.Set(key, b)
}

func (a *applier) del(key []byte) error { return a.txn.Delete(key) }

// keysWithPrefix lists the keys under prefix (copies).
func (a *applier) keysWithPrefix(prefix []byte) [][]byte {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	opt.Prefix = prefix
	it := a.txn.NewIterator(opt)
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

func (a *applier) audit(tenant, action, target string) error {
	_, err := a.putAudit(AuditEvent{Tenant: tenant, Time: a.now(), Actor: a.cmd.Actor, Action: action, Target: target})
	return err
}

// putAudit stores e as the command's next audit event of e.Tenant, numbered within the command, and
// returns its key.
func (a *applier) putAudit(e AuditEvent) ([]byte, error) {
	e.ID, e.Index = fmt.Sprintf("%d-%d", a.index, a.audits), a.index
	a.audits++
	key := keyAudit(e.Tenant, a.index, a.audits)
	return key, a.put(key, e)
}

func (a *applier) changed(tenant, kind, id string) {
	a.changes = append(a.changes, Change{Tenant: tenant, Kind: kind, ID: id})
}

func (a *applier) requireTenant(t string) error {
	if t == "" {
		return invalid("tenant is required")
	}
	// A malformed id ("acme/user", say) would build keys inside another record's range of an existing tenant.
	if !tenantIDPattern.MatchString(t) {
		return notFound("tenant %q does not exist", t)
	}
	ok, err := a.exists(keyTenantRecord(t))
	if err != nil {
		return err
	}
	if !ok {
		return notFound("tenant %q does not exist", t)
	}
	return nil
}

// Tenants.

func applyTenantCreate(a *applier, body json.RawMessage) (any, error) {
	t, err := decode[Tenant](body)
	if err != nil {
		return nil, err
	}
	if err := ValidTenantID(t.ID); err != nil {
		return nil, err
	}
	ok, err := a.exists(keyTenantRecord(t.ID))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, conflict("tenant %q already exists", t.ID)
	}
	t.CreatedAt, t.UpdatedAt = a.now(), a.now()
	if err := a.put(keyTenantRecord(t.ID), t); err != nil {
		return nil, err
	}
	if err := a.txn.Set(keyTenantRegistry(t.ID), nil); err != nil {
		return nil, err
	}
	a.changed(t.ID, "tenant", t.ID)
	return t, a.audit(t.ID, OpTenantCreate, t.ID)
}

func applyTenantUpdate(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[TenantPatch](body)
	if err != nil {
		return nil, err
	}
	var t Tenant
	ok, err := a.get(keyTenantRecord(p.ID), &t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("tenant %q does not exist", p.ID)
	}
	setIf(&t.DisplayName, p.DisplayName)
	setIf(&t.DefaultLocale, p.DefaultLocale)
	setIf(&t.Settings, p.Settings)
	setIf(&t.ManagedBy, p.ManagedBy)
	t.UpdatedAt = a.now()
	if err := a.put(keyTenantRecord(t.ID), t); err != nil {
		return nil, err
	}
	a.changed(t.ID, "tenant", t.ID)
	return t, a.audit(t.ID, OpTenantUpdate, t.ID)
}

func applyTenantDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(r.ID); err != nil {
		return nil, err
	}
	// Global indexes that point into the tenant go with it.
	var routes []Route
	if err := a.each(tenantPrefixKind(r.ID, "route"), func(b []byte) error {
		var rt Route
		if err := json.Unmarshal(b, &rt); err != nil {
			return err
		}
		routes = append(routes, rt)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, rt := range routes {
		if err := a.del(keyHost(rt.Host)); err != nil {
			return nil, err
		}
	}
	for _, k := range a.keysWithPrefix(tenantPrefix(r.ID)) {
		if err := a.del(k); err != nil {
			return nil, err
		}
	}
	if err := a.del(keyTenantRegistry(r.ID)); err != nil {
		return nil, err
	}
	a.changed(r.ID, "tenant", r.ID)
	return nil, a.audit("", OpTenantDelete, r.ID)
}

func tenantPrefixKind(t, kind string) []byte { return []byte("t/" + t + "/" + kind + "/") }

// each calls fn with the value of every key under prefix.
func (a *applier) each(prefix []byte, fn func(v []byte) error) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = prefix
	it := a.txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := it.Item().Value(fn); err != nil {
			return err
		}
	}
	return nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Users.

func applyUserCreate(a *applier, body json.RawMessage) (any, error) {
	u, err := decode[User](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(u.Tenant); err != nil {
		return nil, err
	}
	if u.ID == "" || strings.Contains(u.ID, "/") {
		return nil, invalid("user id is required and may not contain '/'")
	}
	u.Email = NormalizeEmail(u.Email)
	if u.Email == "" && u.Username == "" {
		return nil, invalid("a user needs an email or a username")
	}
	if ok, err := a.exists(keyUser(u.Tenant, u.ID)); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return nil, conflict("user %q already exists", u.ID)
	}
	if err := a.claimIdentities(u.Tenant, u.ID, "", "", u.Email, u.Username); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = a.now(), a.now()
	if err := a.put(keyUser(u.Tenant, u.ID), u); err != nil {
		return nil, err
	}
	a.changed(u.Tenant, "user", u.ID)
	return u.Public(), a.audit(u.Tenant, OpUserCreate, u.ID)
}

// claimIdentities moves a user's email and username index entries from old to new values, refusing a
// value another user of the tenant holds. This is where one-email-per-tenant is decided.
func (a *applier) claimIdentities(t, id, oldEmail, oldUsername, email, username string) error {
	claim := func(key, oldKey []byte, what, value string) error {
		if value == "" || bytes.Equal(key, oldKey) {
			return nil
		}
		owner, err := a.getRaw(key)
		if err != nil {
			return err
		}
		if owner != nil && string(owner) != id {
			return conflict("%s %q is already taken in tenant %q", what, value, t)
		}
		return a.txn.Set(key, []byte(id))
	}
	var oldEK, oldUK []byte
	if oldEmail != "" {
		oldEK = keyEmailIndex(t, oldEmail)
	}
	if oldUsername != "" {
		oldUK = keyUsernameIndex(t, oldUsername)
	}
	if err := claim(keyEmailIndex(t, email), oldEK, "email", email); err != nil {
		return err
	}
	if err := claim(keyUsernameIndex(t, username), oldUK, "username", username); err != nil {
		return err
	}
	if oldEmail != "" && oldEmail != email {
		if err := a.del(oldEK); err != nil {
			return err
		}
	}
	if oldUsername != "" && oldUsername != username {
		if err := a.del(oldUK); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) loadUser(t, id string) (User, error) {
	var u User
	if err := a.requireTenant(t); err != nil {
		return u, err
	}
	ok, err := a.get(keyUser(t, id), &u)
	if err != nil {
		return u, err
	}
	if !ok {
		return u, notFound("user %q does not exist in tenant %q", id, t)
	}
	return u, nil
}

func applyUserUpdate(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[UserPatch](body)
	if err != nil {
		return nil, err
	}
	u, err := a.loadUser(p.Tenant, p.ID)
	if err != nil {
		return nil, err
	}
	email, username := u.Email, u.Username
	if p.Email != nil {
		email = NormalizeEmail(*p.Email)
	}
	setIf(&username, p.Username)
	if email == "" && username == "" {
		return nil, invalid("a user needs an email or a username")
	}
	if err := a.claimIdentities(u.Tenant, u.ID, u.Email, u.Username, email, username); err != nil {
		return nil, err
	}
	u.Email, u.Username = email, username
	setIf(&u.EmailVerified, p.EmailVerified)
	setIf(&u.Blocked, p.Blocked)
	setIf(&u.PasswordHash, p.PasswordHash)
	setIf(&u.Profile, p.Profile)
	for k, v := range p.Attributes {
		if u.Attributes == nil {
			u.Attributes = map[string]any{}
		}
		if v == nil {
			delete(u.Attributes, k)
		} else {
			u.Attributes[k] = v
		}
	}
	u.UpdatedAt = a.now()
	if err := a.put(keyUser(u.Tenant, u.ID), u); err != nil {
		return nil, err
	}
	a.changed(u.Tenant, "user", u.ID)
	return u.Public(), a.audit(u.Tenant, OpUserUpdate, u.ID)
}

func applyUserDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	u, err := a.loadUser(r.Tenant, r.ID)
	if err != nil {
		return nil, err
	}
	if u.Email != "" {
		if err := a.del(keyEmailIndex(u.Tenant, u.Email)); err != nil {
			return nil, err
		}
	}
	if u.Username != "" {
		if err := a.del(keyUsernameIndex(u.Tenant, u.Username)); err != nil {
			return nil, err
		}
	}
	for _, k := range a.keysWithPrefix([]byte("t/" + u.Tenant + "/memberof/" + u.ID + "/")) {
		g := string(k[bytes.LastIndexByte(k, '/')+1:])
		if err := a.del(k); err != nil {
			return nil, err
		}
		if err := a.del(keyMember(u.Tenant, g, u.ID)); err != nil {
			return nil, err
		}
	}
	if err := a.del(keyUser(u.Tenant, u.ID)); err != nil {
		return nil, err
	}
	a.changed(u.Tenant, "user", u.ID)
	return nil, a.audit(u.Tenant, OpUserDelete, u.ID)
}

func applyCredentialPut(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[CredentialPut](body)
	if err != nil {
		return nil, err
	}
	u, err := a.loadUser(p.Tenant, p.UserID)
	if err != nil {
		return nil, err
	}
	if p.Credential.ID == "" || p.Credential.Type == "" {
		return nil, invalid("a credential needs an id and a type")
	}
	p.Credential.CreatedAt = a.now()
	u.Credentials = slices.DeleteFunc(u.Credentials, func(c Credential) bool { return c.ID == p.Credential.ID })
	u.Credentials = append(u.Credentials, p.Credential)
	u.UpdatedAt = a.now()
	if err := a.put(keyUser(u.Tenant, u.ID), u); err != nil {
		return nil, err
	}
	a.changed(u.Tenant, "user", u.ID)
	return nil, a.audit(u.Tenant, OpCredentialPut, u.ID+"/"+p.Credential.ID)
}

func applyCredentialDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[CredentialRef](body)
	if err != nil {
		return nil, err
	}
	u, err := a.loadUser(r.Tenant, r.UserID)
	if err != nil {
		return nil, err
	}
	n := len(u.Credentials)
	u.Credentials = slices.DeleteFunc(u.Credentials, func(c Credential) bool { return c.ID == r.ID })
	if len(u.Credentials) == n {
		return nil, notFound("credential %q does not exist", r.ID)
	}
	if err := a.put(keyUser(u.Tenant, u.ID), u); err != nil {
		return nil, err
	}
	a.changed(u.Tenant, "user", u.ID)
	return nil, a.audit(u.Tenant, OpCredentialDelete, u.ID+"/"+r.ID)
}

// Groups.

func applyGroupCreate(a *applier, body json.RawMessage) (any, error) {
	g, err := decode[Group](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(g.Tenant); err != nil {
		return nil, err
	}
	if g.ID == "" || g.Name == "" || strings.Contains(g.ID, "/") {
		return nil, invalid("a group needs an id (without '/') and a name")
	}
	if ok, err := a.exists(keyGroup(g.Tenant, g.ID)); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return nil, conflict("group %q already exists", g.ID)
	}
	if err := a.claimName(keyGroupName(g.Tenant, g.Name), nil, g.ID, "group name", g.Name); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = a.now(), a.now()
	if err := a.put(keyGroup(g.Tenant, g.ID), g); err != nil {
		return nil, err
	}
	a.changed(g.Tenant, "group", g.ID)
	return g, a.audit(g.Tenant, OpGroupCreate, g.ID)
}

// claimName points a unique-name index entry at id, refusing a name held by another record.
func (a *applier) claimName(key, oldKey []byte, id, what, name string) error {
	if bytes.Equal(key, oldKey) {
		return nil
	}
	owner, err := a.getRaw(key)
	if err != nil {
		return err
	}
	if owner != nil && string(owner) != id {
		return conflict("%s %q is already taken", what, name)
	}
	if oldKey != nil {
		if err := a.del(oldKey); err != nil {
			return err
		}
	}
	return a.txn.Set(key, []byte(id))
}

func (a *applier) loadGroup(t, id string) (Group, error) {
	var g Group
	if err := a.requireTenant(t); err != nil {
		return g, err
	}
	ok, err := a.get(keyGroup(t, id), &g)
	if err != nil {
		return g, err
	}
	if !ok {
		return g, notFound("group %q does not exist in tenant %q", id, t)
	}
	return g, nil
}

func applyGroupUpdate(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[GroupPatch](body)
	if err != nil {
		return nil, err
	}
	g, err := a.loadGroup(p.Tenant, p.ID)
	if err != nil {
		return nil, err
	}
	if p.Name != nil && *p.Name != g.Name {
		if *p.Name == "" {
			return nil, invalid("a group needs a name")
		}
		if err := a.claimName(keyGroupName(g.Tenant, *p.Name), keyGroupName(g.Tenant, g.Name), g.ID, "group name", *p.Name); err != nil {
			return nil, err
		}
		g.Name = *p.Name
	}
	setIf(&g.Description, p.Description)
	g.UpdatedAt = a.now()
	if err := a.put(keyGroup(g.Tenant, g.ID), g); err != nil {
		return nil, err
	}
	a.changed(g.Tenant, "group", g.ID)
	return g, a.audit(g.Tenant, OpGroupUpdate, g.ID)
}

func applyGroupDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	g, err := a.loadGroup(r.Tenant, r.ID)
	if err != nil {
		return nil, err
	}
	for _, k := range a.keysWithPrefix([]byte("t/" + g.Tenant + "/member/" + g.ID + "/")) {
		u := string(k[bytes.LastIndexByte(k, '/')+1:])
		if err := a.del(k); err != nil {
			return nil, err
		}
		if err := a.del(keyMemberOf(g.Tenant, u, g.ID)); err != nil {
			return nil, err
		}
		a.changed(g.Tenant, "user", u)
	}
	if err := a.del(keyGroupName(g.Tenant, g.Name)); err != nil {
		return nil, err
	}
	if err := a.del(keyGroup(g.Tenant, g.ID)); err != nil {
		return nil, err
	}
	a.changed(g.Tenant, "group", g.ID)
	return nil, a.audit(g.Tenant, OpGroupDelete, g.ID)
}

func applyMemberAdd(a *applier, body json.RawMessage) (any, error) {
	m, err := decode[Membership](body)
	if err != nil {
		return nil, err
	}
	if _, err := a.loadGroup(m.Tenant, m.GroupID); err != nil {
		return nil, err
	}
	if _, err := a.loadUser(m.Tenant, m.UserID); err != nil {
		return nil, err
	}
	if err := a.txn.Set(keyMember(m.Tenant, m.GroupID, m.UserID), nil); err != nil {
		return nil, err
	}
	if err := a.txn.Set(keyMemberOf(m.Tenant, m.UserID, m.GroupID), nil); err != nil {
		return nil, err
	}
	a.changed(m.Tenant, "user", m.UserID)
	return nil, a.audit(m.Tenant, OpMemberAdd, m.GroupID+"/"+m.UserID)
}

func applyMemberRemove(a *applier, body json.RawMessage) (any, error) {
	m, err := decode[Membership](body)
	if err != nil {
		return nil, err
	}
	ok, err := a.exists(keyMember(m.Tenant, m.GroupID, m.UserID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("user %q is not in group %q", m.UserID, m.GroupID)
	}
	if err := a.del(keyMember(m.Tenant, m.GroupID, m.UserID)); err != nil {
		return nil, err
	}
	if err := a.del(keyMemberOf(m.Tenant, m.UserID, m.GroupID)); err != nil {
		return nil, err
	}
	a.changed(m.Tenant, "user", m.UserID)
	return nil, a.audit(m.Tenant, OpMemberRemove, m.GroupID+"/"+m.UserID)
}

// Apps.

func applyAppCreate(a *applier, body json.RawMessage) (any, error) {
	app, err := decode[App](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(app.Tenant); err != nil {
		return nil, err
	}
	if app.ID == "" || app.ClientID == "" || app.Name == "" {
		return nil, invalid("an app needs an id, a name and a client_id")
	}
	if err := validAppType(app.Type); err != nil {
		return nil, err
	}
	if ok, err := a.exists(keyApp(app.Tenant, app.ID)); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return nil, conflict("app %q already exists", app.ID)
	}
	if err := a.claimName(keyClientIndex(app.Tenant, app.ClientID), nil, app.ID, "client_id", app.ClientID); err != nil {
		return nil, err
	}
	if err := a.claimName(keyAppName(app.Tenant, app.Name), nil, app.ID, "app name", app.Name); err != nil {
		return nil, err
	}
	app.CreatedAt, app.UpdatedAt = a.now(), a.now()
	if err := a.put(keyApp(app.Tenant, app.ID), app); err != nil {
		return nil, err
	}
	a.changed(app.Tenant, "app", app.ID)
	return app.Public(), a.audit(app.Tenant, OpAppCreate, app.ID)
}

func validAppType(t string) error {
	switch t {
	case AppWeb, AppSPA, AppNative, AppService:
		return nil
	}
	return invalid("app type %q is not one of web, spa, native, service", t)
}

func (a *applier) loadApp(t, id string) (App, error) {
	var app App
	if err := a.requireTenant(t); err != nil {
		return app, err
	}
	ok, err := a.get(keyApp(t, id), &app)
	if err != nil {
		return app, err
	}
	if !ok {
		return app, notFound("app %q does not exist in tenant %q", id, t)
	}
	return app, nil
}

func applyAppUpdate(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[AppPatch](body)
	if err != nil {
		return nil, err
	}
	app, err := a.loadApp(p.Tenant, p.ID)
	if err != nil {
		return nil, err
	}
	if p.Name != nil && *p.Name != app.Name {
		if err := a.claimName(keyAppName(app.Tenant, *p.Name), keyAppName(app.Tenant, app.Name), app.ID, "app name", *p.Name); err != nil {
			return nil, err
		}
		app.Name = *p.Name
	}
	setIf(&app.RedirectURIs, p.RedirectURIs)
	setIf(&app.PostLogoutRedirectURIs, p.PostLogoutRedirectURIs)
	setIf(&app.GrantTypes, p.GrantTypes)
	setIf(&app.Secrets, p.Secrets)
	setIf(&app.AccessTokenTTL, p.AccessTokenTTL)
	setIf(&app.IDTokenTTL, p.IDTokenTTL)
	setIf(&app.RefreshTokenTTL, p.RefreshTokenTTL)
	setIf(&app.SigningAlg, p.SigningAlg)
	setIf(&app.JWKS, p.JWKS)
	setIf(&app.ManagedBy, p.ManagedBy)
	app.UpdatedAt = a.now()
	if err := a.put(keyApp(app.Tenant, app.ID), app); err != nil {
		return nil, err
	}
	a.changed(app.Tenant, "app", app.ID)
	return app.Public(), a.audit(app.Tenant, OpAppUpdate, app.ID)
}

func applyAppDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	app, err := a.loadApp(r.Tenant, r.ID)
	if err != nil {
		return nil, err
	}
	for _, k := range [][]byte{keyClientIndex(app.Tenant, app.ClientID), keyAppName(app.Tenant, app.Name), keyApp(app.Tenant, app.ID)} {
		if err := a.del(k); err != nil {
			return nil, err
		}
	}
	a.changed(app.Tenant, "app", app.ID)
	return nil, a.audit(app.Tenant, OpAppDelete, app.ID)
}

// Keys, routes, identity providers, extensions: records put whole.

func applyKeyPut(a *applier, body json.RawMessage) (any, error) {
	k, err := decode[SigningKey](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(k.Tenant); err != nil {
		return nil, err
	}
	if k.ID == "" || k.Alg == "" || len(k.Public) == 0 {
		return nil, invalid("a signing key needs a kid, an alg and a public key")
	}
	switch k.State {
	case KeyNext, KeyActive, KeyRetired:
	default:
		return nil, invalid("signing key state %q is not one of next, active, retired", k.State)
	}
	var old SigningKey
	found, err := a.get(keySigningKey(k.Tenant, k.ID), &old)
	if err != nil {
		return nil, err
	}
	if found {
		if len(k.Private) == 0 {
			k.Private = old.Private
		}
		k.CreatedAt = old.CreatedAt
	} else {
		k.CreatedAt = a.now()
	}
	if err := a.put(keySigningKey(k.Tenant, k.ID), k); err != nil {
		return nil, err
	}
	a.changed(k.Tenant, "key", k.ID)
	return nil, a.audit(k.Tenant, OpKeyPut, k.ID+"="+k.State)
}

func applyKeyDelete(a *applier, body json.RawMessage) (any, error) {
	return a.deleteRecord(body, "key", OpKeyDelete, keySigningKey)
}

func (a *applier) deleteRecord(body json.RawMessage, kind, op string, key func(t, id string) []byte) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(r.Tenant); err != nil {
		return nil, err
	}
	ok, err := a.exists(key(r.Tenant, r.ID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("%s %q does not exist in tenant %q", kind, r.ID, r.Tenant)
	}
	if err := a.del(key(r.Tenant, r.ID)); err != nil {
		return nil, err
	}
	a.changed(r.Tenant, kind, r.ID)
	return nil, a.audit(r.Tenant, op, r.ID)
}

func applyRoutePut(a *applier, body json.RawMessage) (any, error) {
	rt, err := decode[Route](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(rt.Tenant); err != nil {
		return nil, err
	}
	if rt.Host == "" || rt.Upstream == "" {
		return nil, invalid("a route needs a host and an upstream")
	}
	rt.Host = strings.ToLower(rt.Host) // RouteByHost looks hosts up lower-cased
	owner, err := a.getRaw(keyHost(rt.Host))
	if err != nil {
		return nil, err
	}
	if owner != nil && string(owner) != rt.Tenant {
		return nil, conflict("host %q is already routed by another tenant", rt.Host)
	}
	rt.UpdatedAt = a.now()
	if err := a.txn.Set(keyHost(rt.Host), []byte(rt.Tenant)); err != nil {
		return nil, err
	}
	if err := a.put(keyRoute(rt.Tenant, rt.Host), rt); err != nil {
		return nil, err
	}
	a.changed(rt.Tenant, "route", rt.Host)
	return nil, a.audit(rt.Tenant, OpRoutePut, rt.Host)
}

func applyRouteDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[HostRef](body)
	if err != nil {
		return nil, err
	}
	r.Host = strings.ToLower(r.Host)
	ok, err := a.exists(keyRoute(r.Tenant, r.Host))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("route %q does not exist in tenant %q", r.Host, r.Tenant)
	}
	if err := a.del(keyRoute(r.Tenant, r.Host)); err != nil {
		return nil, err
	}
	if err := a.del(keyHost(r.Host)); err != nil {
		return nil, err
	}
	a.changed(r.Tenant, "route", r.Host)
	return nil, a.audit(r.Tenant, OpRouteDelete, r.Host)
}

func applyIdPPut(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[IdentityProvider](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(p.Tenant); err != nil {
		return nil, err
	}
	if p.ID == "" || p.Type == "" {
		return nil, invalid("an identity provider needs an id and a type")
	}
	p.UpdatedAt = a.now()
	if err := a.put(keyIdP(p.Tenant, p.ID), p); err != nil {
		return nil, err
	}
	a.changed(p.Tenant, "idp", p.ID)
	return nil, a.audit(p.Tenant, OpIdPPut, p.ID)
}

func applyIdPDelete(a *applier, body json.RawMessage) (any, error) {
	return a.deleteRecord(body, "idp", OpIdPDelete, keyIdP)
}

func applyExtensionPut(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[ExtensionPut](body)
	if err != nil {
		return nil, err
	}
	e := p.Extension
	if err := a.requireTenant(e.Tenant); err != nil {
		return nil, err
	}
	if e.ID == "" || len(e.Events) == 0 {
		return nil, invalid("an extension needs an id and at least one event")
	}
	if (e.WasmSHA256 == "") == (e.URL == "") {
		return nil, invalid("an extension has exactly one of a wasm module or a url")
	}
	if e.WasmSHA256 != "" {
		if len(p.Wasm) > 0 {
			if got := sha256Hex(p.Wasm); got != e.WasmSHA256 {
				return nil, invalid("wasm module hash %s does not match the declared %s", got, e.WasmSHA256)
			}
			if len(p.Wasm) > MaxWasmModule {
				return nil, invalid("wasm module of %d bytes is over the %d-byte limit", len(p.Wasm), MaxWasmModule)
			}
			if err := a.putBlob(e.Tenant, e.WasmSHA256, p.Wasm); err != nil {
				return nil, err
			}
			e.WasmSize = int64(len(p.Wasm))
		} else if ok, err := a.exists(keyBlob(e.Tenant, e.WasmSHA256)); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			return nil, invalid("wasm module %s is not stored: send it with the extension", e.WasmSHA256)
		}
	}
	var old Extension
	found, err := a.get(keyExtension(e.Tenant, e.ID), &old)
	if err != nil {
		return nil, err
	}
	e.Version = 1
	if found {
		e.Version = old.Version + 1
		if e.WasmSize == 0 && e.WasmSHA256 == old.WasmSHA256 {
			e.WasmSize = old.WasmSize
		}
	}
	e.UpdatedAt = a.now()
	if err := a.put(keyExtension(e.Tenant, e.ID), e); err != nil {
		return nil, err
	}
	a.changed(e.Tenant, "extension", e.ID)
	return e, a.audit(e.Tenant, OpExtensionPut, e.ID)
}

func applyExtensionDelete(a *applier, body json.RawMessage) (any, error) {
	return a.deleteRecord(body, "extension", OpExtensionDelete, keyExtension)
}

// Sessions and refresh-token families: records only here; the OIDC provider gives them behaviour.

func applySessionPut(a *applier, body json.RawMessage) (any, error) {
	s, err := decode[Session](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(s.Tenant); err != nil {
		return nil, err
	}
	if s.ID == "" || s.UserID == "" {
		return nil, invalid("a session needs an id and a user")
	}
	if err := a.put(keySession(s.Tenant, s.ID), s); err != nil {
		return nil, err
	}
	a.changed(s.Tenant, "session", s.ID)
	return nil, nil
}

func applySessionRevoke(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	var s Session
	ok, err := a.get(keySession(r.Tenant, r.ID), &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("session does not exist")
	}
	if s.RevokedAt.IsZero() {
		s.RevokedAt = a.now()
	}
	if err := a.put(keySession(r.Tenant, r.ID), s); err != nil {
		return nil, err
	}
	a.changed(r.Tenant, "session", r.ID)
	return nil, nil
}

func applyRefreshPut(a *applier, body json.RawMessage) (any, error) {
	f, err := decode[RefreshFamily](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(f.Tenant); err != nil {
		return nil, err
	}
	if f.ID == "" || f.ClientID == "" {
		return nil, invalid("a refresh-token family needs an id and a client")
	}
	if err := a.put(keyRefresh(f.Tenant, f.ID), f); err != nil {
		return nil, err
	}
	a.changed(f.Tenant, "refresh", f.ID)
	return nil, nil
}

func applyRefreshRevoke(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	var f RefreshFamily
	ok, err := a.get(keyRefresh(r.Tenant, r.ID), &f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("refresh-token family does not exist")
	}
	if f.RevokedAt.IsZero() {
		f.RevokedAt = a.now()
	}
	if err := a.put(keyRefresh(r.Tenant, r.ID), f); err != nil {
		return nil, err
	}
	a.changed(r.Tenant, "refresh", r.ID)
	return nil, nil
}

// Cluster nodes.

func applyNodePut(a *applier, body json.RawMessage) (any, error) {
	n, err := decode[Node](body)
	if err != nil {
		return nil, err
	}
	if n.ID == "" || n.RaftAddr == "" {
		return nil, invalid("a node needs an id and a raft address")
	}
	var old Node
	if found, err := a.get(keyNode(n.ID), &old); err != nil {
		return nil, err
	} else if found {
		n.JoinedAt = old.JoinedAt
	} else {
		n.JoinedAt = a.now()
	}
	if err := a.put(keyNode(n.ID), n); err != nil {
		return nil, err
	}
	a.changed("", "node", n.ID)
	return nil, a.audit("", OpNodePut, n.ID)
}

func applyNodeDelete(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[Ref](body)
	if err != nil {
		return nil, err
	}
	if err := a.del(keyNode(r.ID)); err != nil {
		return nil, err
	}
	a.changed("", "node", r.ID)
	return nil, a.audit("", OpNodeDelete, r.ID)
}

// MaxWasmModule bounds a stored extension module. Apply refuses a larger one, the same on every replica;
// left to the store, a value over its limit would be an error that stops replicas instead.
const MaxWasmModule = 16 << 20

// blobChunk is the size of the pieces a module is stored in. On disk a piece is over Badger's value
// threshold (1 MiB), so it goes to the value log and counts little toward the transaction's size limit; an
// in-memory store has no value log and takes values of at most that threshold, so its pieces are just
// under it. The header records how many pieces there are, so either layout reads back the same.
func blobChunk(inMemory bool) int {
	if inMemory {
		return 1<<20 - 4<<10
	}
	return 4 << 20
}

// blobHeader is stored under a module's key; its bytes follow in chunks under the key + "/NNNN".
type blobHeader struct {
	Size   int `json:"size"`
	Chunks int `json:"chunks"`
}

func (a *applier) putBlob(tenant, sha string, b []byte) error {
	size := a.chunk
	if size <= 0 {
		size = blobChunk(false)
	}
	n := (len(b) + size - 1) / size
	for i := range n {
		end := min((i+1)*size, len(b))
		if err := a.txn.Set(keyBlobChunk(tenant, sha, i), b[i*size:end]); err != nil {
			return err
		}
	}
	return a.put(keyBlob(tenant, sha), blobHeader{Size: len(b), Chunks: n})
}
