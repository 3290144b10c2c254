package tokens_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// A tenant's keys are rotated in two steps; the ring signs with the active key and verifies with any
// published one. In a node, the ops go through raft and the cluster's apply notifications call
// Invalidate; here they are applied to an in-memory store directly.
func Example() {
	store, _ := directory.OpenMemory(directory.Options{SmallMemory: true})
	defer store.Close()
	raw := make([]byte, 32)
	rand.Read(raw)
	kek, _ := directory.NewKEK(raw)
	ring := tokens.NewKeyRing(store, kek)

	now := time.Now()
	index := uint64(0)
	apply := func(ops ...directory.Op) {
		index++
		data, _ := directory.NewCommand(now, "example", ops...).Encode()
		res, err := store.Apply(index, data)
		if err != nil {
			panic(err)
		}
		for _, c := range res.Changes {
			if c.Kind == "key" || c.Kind == "tenant" {
				ring.Invalidate(c.Tenant)
			}
		}
	}
	apply(directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: "acme"}))
	for step := 1; step <= 2; step++ {
		ops, changes, err := tokens.RotationOps(store, kek, "acme", "ES256", now, time.Hour)
		if err != nil {
			panic(err)
		}
		apply(ops...)
		for _, c := range changes {
			fmt.Printf("step %d: %s\n", step, c[:strings.Index(c, " key ")])
		}
	}

	issuer := "https://id.example/acme"
	tok, err := ring.SignJWT("acme", "", tokens.TypeAccessToken, tokens.Claims{
		"iss": issuer, "sub": "u1", "aud": issuer, "client_id": "svc",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	})
	if err != nil {
		panic(err)
	}
	claims, err := ring.VerifyAccessToken("acme", issuer, tok, now)
	fmt.Println(claims["sub"], err)
	_, err = ring.VerifyAccessToken("beta", "https://id.example/beta", tok, now)
	fmt.Println(err != nil)
	// Output:
	// step 1: published next ES256
	// step 2: activated ES256
	// step 2: published next ES256
	// u1 <nil>
	// true
}
