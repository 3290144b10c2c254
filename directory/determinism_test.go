package directory

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// workload generates a reproducible sequence of mixed commands over a small space of names, so that many
// of them collide (conflicts, not-founds) and some are malformed.
type workload struct {
	r *rand.Rand
}

func (w *workload) pick(xs ...string) string { return xs[w.r.IntN(len(xs))] }

func (w *workload) tenant() string { return w.pick("acme", "beta", "gamma") }

func (w *workload) id(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, w.r.IntN(n)) }

func (w *workload) email() string {
	e := w.pick("ann", "bob", "cy", "dee", "eve", "fay") + "@example.com"
	if w.r.IntN(3) == 0 {
		e = strings.ToUpper(e[:1]) + e[1:]
	}
	return e
}

func (w *workload) wasm() []byte { return []byte("\x00asm\x01\x00\x00\x00" + w.pick("one", "two")) }

func (w *workload) op() Op {
	t := w.tenant()
	switch w.r.IntN(27) {
	case 0:
		return tenantCreate(t)
	case 1:
		return MakeOp(OpTenantUpdate, TenantPatch{ID: t, DisplayName: ptr(w.pick("A", "B"))})
	case 2:
		if w.r.IntN(4) == 0 {
			return ref(OpTenantDelete, "", t)
		}
		return tenantCreate(t)
	case 3, 4, 5:
		u := User{ID: w.id("u", 8), Tenant: t, Email: w.email(), Attributes: map[string]any{"n": w.r.IntN(3), "z": "x", "a": true}}
		if w.r.IntN(3) == 0 {
			u.Username = w.pick("x", "y", "z")
		}
		return MakeOp(OpUserCreate, u)
	case 6, 7:
		p := UserPatch{Tenant: t, ID: w.id("u", 8), Attributes: map[string]any{"n": nil, w.pick("k1", "k2"): w.r.IntN(9)}}
		if w.r.IntN(2) == 0 {
			p.Email = ptr(w.email())
		}
		if w.r.IntN(3) == 0 {
			p.Username = ptr(w.pick("x", "y", "z"))
		}
		return MakeOp(OpUserUpdate, p)
	case 8:
		return ref(OpUserDelete, t, w.id("u", 8))
	case 9:
		return MakeOp(OpCredentialPut, CredentialPut{Tenant: t, UserID: w.id("u", 8),
			Credential: Credential{ID: w.id("c", 2), Type: "totp", Secret: Sealed(w.pick("s1", "s2"))}})
	case 10:
		return groupCreate(t, w.id("g", 4), w.pick("staff", "admins", "ops"))
	case 11:
		return MakeOp(OpGroupUpdate, GroupPatch{Tenant: t, ID: w.id("g", 4), Name: ptr(w.pick("staff", "admins", "ops", "dev"))})
	case 12:
		return ref(OpGroupDelete, t, w.id("g", 4))
	case 13, 14:
		return memberAdd(t, w.id("g", 4), w.id("u", 8))
	case 15:
		return MakeOp(OpMemberRemove, Membership{Tenant: t, GroupID: w.id("g", 4), UserID: w.id("u", 8)})
	case 16:
		return appCreate(t, w.id("a", 4), w.pick("Portal", "Shop", "Blog"), w.pick("c1", "c2", "c3"),
			SecretHash{Hash: "sha256$fixed$" + w.pick("h1", "h2"), CreatedAt: t0})
	case 17:
		return MakeOp(OpAppUpdate, AppPatch{Tenant: t, ID: w.id("a", 4), Name: ptr(w.pick("Portal", "Shop", "Wiki")),
			GrantTypes: &[]string{"authorization_code"}})
	case 18:
		return ref(OpAppDelete, t, w.id("a", 4))
	case 19:
		k := SigningKey{ID: w.id("k", 3), Tenant: t, Alg: "ES256", Public: []byte("pub"), State: w.pick(KeyNext, KeyActive, KeyRetired, "bogus")}
		if w.r.IntN(2) == 0 {
			k.Private = Sealed("sealed-" + k.ID)
		}
		return MakeOp(OpKeyPut, k)
	case 20:
		if w.r.IntN(3) == 0 {
			return MakeOp(OpRouteDelete, HostRef{Tenant: t, Host: w.pick("h1.example", "h2.example", "h3.example")})
		}
		return routePut(t, w.pick("h1.example", "h2.example", "H3.example"))
	case 21:
		wasm := w.wasm()
		sum := SHA256Hex(wasm)
		put := ExtensionPut{Extension: Extension{ID: w.id("e", 2), Tenant: t, Events: []string{"OnTokenIssuanceStart"}, WasmSHA256: sum}}
		switch w.r.IntN(3) {
		case 0:
			put.Wasm = wasm
		case 1:
			put.Wasm = append(wasm, 'X') // hash mismatch
		}
		return MakeOp(OpExtensionPut, put)
	case 22:
		if w.r.IntN(2) == 0 {
			return ref(OpSessionRevoke, t, w.id("s", 3))
		}
		return MakeOp(OpSessionPut, Session{ID: w.id("s", 3), Tenant: t, UserID: w.id("u", 8), AMR: []string{"pwd"}})
	case 23:
		if w.r.IntN(2) == 0 {
			return ref(OpRefreshRevoke, t, w.id("r", 3))
		}
		return MakeOp(OpRefreshPut, RefreshFamily{ID: w.id("r", 3), Tenant: t, ClientID: "c1", Generation: w.r.IntN(5)})
	case 24:
		if w.r.IntN(2) == 0 {
			return ref(OpNodeDelete, "", w.id("n", 3))
		}
		return MakeOp(OpNodePut, Node{ID: w.id("n", 3), RaftAddr: w.pick("a:1", "b:2"), Suffrage: "voter"})
	case 25:
		// Lines of the three tenants and of one that never exists, now and then a bad level.
		var lines []ExtensionLogLine
		for i := range 1 + w.r.IntN(4) {
			lines = append(lines, ExtensionLogLine{Tenant: w.pick("acme", "beta", "gamma", "gone"), Extension: w.id("e", 2),
				Time: t0.Add(time.Duration(w.r.IntN(100)) * time.Millisecond), Level: w.pick("info", "info", "error", "loud"),
				Source: w.pick("log", "stdout", "host"), Message: fmt.Sprintf("line %d", i)})
		}
		return MakeOp(OpExtensionLog, ExtensionLog{Node: w.pick("edge-1", "edge-2"), Lines: lines})
	default:
		if w.r.IntN(2) == 0 {
			return Op{Kind: "user.frobnicate", Body: json.RawMessage(`{}`)}
		}
		return Op{Kind: OpUserCreate, Body: json.RawMessage(`{"id": 1}`)}
	}
}

func (w *workload) commands(n int) [][]byte {
	out := make([][]byte, 0, n)
	// Start with the tenants so that most ops have somewhere to land.
	b, _ := NewCommand(t0, "gen", tenantCreate("acme"), tenantCreate("beta"), tenantCreate("gamma")).Encode()
	out = append(out, b)
	for i := 1; i < n; i++ {
		var ops []Op
		nops := 1
		if w.r.IntN(5) == 0 {
			nops = 2 + w.r.IntN(2)
		}
		for range nops {
			ops = append(ops, w.op())
		}
		var data []byte
		if w.r.IntN(40) == 0 {
			data = []byte(`{"ops": "not ops"}`)
		} else {
			data, _ = NewCommand(t0.Add(time.Duration(i)*time.Second), w.pick("admin", "edge-1"), ops...).Encode()
		}
		out = append(out, data)
	}
	return out
}

// applyAll applies the commands at indexes 1.. and returns a transcript of the results.
func applyAll(t *testing.T, s *Store, cmds [][]byte) (transcript []string, ok, refused int) {
	t.Helper()
	for i, c := range cmds {
		res, err := s.Apply(uint64(i+1), c)
		line := ""
		if e, isRefusal := AsError(err); isRefusal {
			refused++
			line = fmt.Sprintf("%d refused %s: %s", i+1, e.Code, e.Message)
		} else if err != nil {
			t.Fatalf("Apply(%d): store error %v", i+1, err)
		} else {
			ok++
			b, _ := json.Marshal(res)
			line = fmt.Sprintf("%d ok %s", i+1, b)
		}
		transcript = append(transcript, line)
	}
	return transcript, ok, refused
}

func TestDeterminism(t *testing.T) {
	const n = 220
	w := &workload{r: rand.New(rand.NewPCG(1, 2))}
	cmds := w.commands(n)

	stores := map[string]*Store{
		"memory":  openMemoryStore(t),
		"memory2": openMemoryStore(t),
		"disk":    openDiskStore(t, t.TempDir()),
	}
	var wantName string
	var wantTranscript []string
	var wantDump map[string]string
	for _, name := range []string{"memory", "memory2", "disk"} {
		s := stores[name]
		transcript, ok, refused := applyAll(t, s, cmds)
		t.Logf("%s: %d applied, %d refused", name, ok, refused)
		if ok < 60 || refused < 40 {
			t.Fatalf("%s: %d applied and %d refused: the workload does not exercise both paths", name, ok, refused)
		}
		if s.AppliedIndex() != n {
			t.Errorf("%s: AppliedIndex = %d, want %d", name, s.AppliedIndex(), n)
		}
		d := dump(t, s)
		if wantDump == nil {
			wantName, wantTranscript, wantDump = name, transcript, d
			if len(keysUnder(d, "t/")) < 50 {
				t.Fatalf("the workload left only %d tenant keys", len(keysUnder(d, "t/")))
			}
			continue
		}
		for i := range transcript {
			if transcript[i] != wantTranscript[i] {
				t.Fatalf("%s and %s differ at command %d:\n%s\n%s", wantName, name, i+1, wantTranscript[i], transcript[i])
			}
		}
		if !maps.Equal(wantDump, d) {
			t.Fatalf("%s and %s end with different contents:\n%s", wantName, name, diffDumps(wantDump, d))
		}
	}

	// A replica restored from a snapshot halfway and then fed the rest of the log ends the same.
	half := openMemoryStore(t)
	applyAll(t, half, cmds[:n/2])
	restored := openDiskStore(t, t.TempDir())
	if err := restored.Restore(bytesReader(snapshotBytes(t, half))); err != nil {
		t.Fatal(err)
	}
	if restored.AppliedIndex() != n/2 {
		t.Fatalf("restored AppliedIndex = %d", restored.AppliedIndex())
	}
	for i := n / 2; i < n; i++ {
		if _, err := restored.Apply(uint64(i+1), cmds[i]); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatal(err)
			}
		}
	}
	if d := dump(t, restored); !maps.Equal(wantDump, d) {
		t.Fatalf("a replica restored halfway differs:\n%s", diffDumps(wantDump, d))
	}
}

// applyBatched applies the commands in batches of random sizes through ApplyBatch and returns the same
// transcript applyAll does.
func applyBatched(t *testing.T, s *Store, cmds [][]byte, r *rand.Rand) []string {
	t.Helper()
	var transcript []string
	for i := 0; i < len(cmds); {
		n := min(1+r.IntN(70), len(cmds)-i)
		entries := make([]Entry, n)
		for k := range entries {
			entries[k] = Entry{Index: uint64(i + k + 1), Data: cmds[i+k]}
		}
		outs, err := s.ApplyBatch(entries)
		if err != nil {
			t.Fatalf("ApplyBatch at %d: store error %v", i+1, err)
		}
		for k, o := range outs {
			if e, refused := AsError(o.Err); refused {
				transcript = append(transcript, fmt.Sprintf("%d refused %s: %s", i+k+1, e.Code, e.Message))
			} else if o.Err != nil {
				t.Fatalf("ApplyBatch(%d): %v", i+k+1, o.Err)
			} else {
				b, _ := json.Marshal(o.Result)
				transcript = append(transcript, fmt.Sprintf("%d ok %s", i+k+1, b))
			}
		}
		i += n
	}
	return transcript
}

// Batching is only an optimisation: the same commands in batches give the same outcomes and the same
// state as one by one, whatever the batch boundaries and however many commands in a batch are refused.
func TestApplyBatchMatchesApply(t *testing.T) {
	const n = 400
	w := &workload{r: rand.New(rand.NewPCG(3, 4))}
	cmds := w.commands(n)
	single := openMemoryStore(t)
	want, _, refused := applyAll(t, single, cmds)
	if refused < 50 {
		t.Fatalf("only %d refusals: the workload does not test batches that stop early", refused)
	}
	for seed := uint64(1); seed <= 3; seed++ {
		batched := openDiskStore(t, t.TempDir())
		got := applyBatched(t, batched, cmds, rand.New(rand.NewPCG(seed, 9)))
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("seed %d: command %d differs:\nsingle:  %s\nbatched: %s", seed, i+1, want[i], got[i])
			}
		}
		if !maps.Equal(dump(t, single), dump(t, batched)) {
			t.Fatalf("seed %d: batched store differs:\n%s", seed, diffDumps(dump(t, single), dump(t, batched)))
		}
		if batched.AppliedIndex() != n {
			t.Errorf("seed %d: AppliedIndex = %d", seed, batched.AppliedIndex())
		}
		// A replayed batch (after a restart) is skipped entry by entry.
		outs, err := batched.ApplyBatch([]Entry{{Index: 5, Data: cmds[4]}, {Index: n, Data: cmds[n-1]}})
		if err != nil || outs[0].Err != nil || outs[1].Err != nil || len(outs[0].Result.Outputs) != 0 {
			t.Errorf("replayed batch: %+v, %v", outs, err)
		}
	}
}
