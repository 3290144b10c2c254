package directory_test

import (
	"fmt"
	"time"

	"postern.dev/postern/directory"
)

// A proposer builds a command (time and ids decided outside), raft replicates it, and every replica
// applies it at the same index; uniqueness is decided inside Apply.
func ExampleStore_Apply() {
	s, err := directory.OpenMemory(directory.Options{SmallMemory: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(index uint64, ops ...directory.Op) error {
		data, err := directory.NewCommand(now, "admin", ops...).Encode()
		if err != nil {
			return err
		}
		_, err = s.Apply(index, data)
		return err
	}

	fmt.Println(apply(1,
		directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: "acme"}),
		directory.MakeOp(directory.OpUserCreate, directory.User{ID: "u1", Tenant: "acme", Email: "Ann@Example.com"})))
	err = apply(2, directory.MakeOp(directory.OpUserCreate, directory.User{ID: "u2", Tenant: "acme", Email: "ann@example.COM"}))
	if e, ok := directory.AsError(err); ok {
		fmt.Println(e.Code+":", e.Message)
	}
	u, _ := s.UserByEmail("acme", "ANN@example.com")
	fmt.Println(u.ID, u.Email, s.AppliedIndex())
	// Output:
	// <nil>
	// conflict: email "ann@example.com" is already taken in tenant "acme"
	// u1 ann@example.com 2
}
