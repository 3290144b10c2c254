package directory

import (
	"encoding/binary"
	"fmt"
)

// The key layout. Everything a tenant owns lives under "t/<tenant>/"; "sys/" holds what belongs to the
// cluster (nodes, the applied index) and the few global indexes that must be unique across tenants
// (proxy route hosts). Index entries map a lookup value to a record id and change in the same transaction
// as the record.

var (
	keyApplied = []byte("sys/applied")
)

func tenantPrefix(t string) []byte      { return []byte("t/" + t + "/") }
func keyTenantRegistry(t string) []byte { return []byte("sys/tenants/" + t) }
func keyTenantRecord(t string) []byte   { return []byte("t/" + t + "/tenant") }
func keyUser(t, id string) []byte       { return []byte("t/" + t + "/user/" + id) }
func keyEmailIndex(t, email string) []byte {
	return []byte("t/" + t + "/ix/email/" + email)
}
func keyUsernameIndex(t, name string) []byte { return []byte("t/" + t + "/ix/username/" + name) }
func keyGroup(t, id string) []byte           { return []byte("t/" + t + "/group/" + id) }
func keyGroupName(t, name string) []byte     { return []byte("t/" + t + "/ix/group/" + name) }
func keyMember(t, g, u string) []byte        { return []byte("t/" + t + "/member/" + g + "/" + u) }
func keyMemberOf(t, u, g string) []byte      { return []byte("t/" + t + "/memberof/" + u + "/" + g) }
func keyApp(t, id string) []byte             { return []byte("t/" + t + "/app/" + id) }
func keyClientIndex(t, cid string) []byte    { return []byte("t/" + t + "/ix/client/" + cid) }
func keyAppName(t, name string) []byte       { return []byte("t/" + t + "/ix/appname/" + name) }
func keyRoute(t, host string) []byte         { return []byte("t/" + t + "/route/" + host) }
func keyHost(host string) []byte             { return []byte("sys/host/" + host) }
func keyIdP(t, id string) []byte             { return []byte("t/" + t + "/idp/" + id) }
func keySigningKey(t, kid string) []byte     { return []byte("t/" + t + "/key/" + kid) }
func keyExtension(t, id string) []byte       { return []byte("t/" + t + "/ext/" + id) }
func keyBlob(t, sha string) []byte           { return []byte("t/" + t + "/blob/" + sha) }
func keyBlobChunk(t, sha string, i int) []byte {
	return fmt.Appendf(nil, "t/%s/blob/%s/%04d", t, sha, i)
}
func keySession(t, id string) []byte { return []byte("t/" + t + "/session/" + id) }
func keyRefresh(t, id string) []byte { return []byte("t/" + t + "/refresh/" + id) }
func keyNode(id string) []byte       { return []byte("sys/node/" + id) }
func keyAudit(t string, index uint64, n int) []byte {
	if t == "" {
		return fmt.Appendf(nil, "sys/audit/%020d/%04d", index, n)
	}
	return fmt.Appendf(nil, "t/%s/audit/%020d/%04d", t, index, n)
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
