package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"postern.dev/postern/directory"
)

// usersPerCommand is how many user.create ops the load packs into one command (one Badger transaction).
const usersPerCommand = 1000

// userReads measures the hot-path read of sign-in: a user by email, among cfg.Users users of one tenant, from
// a directory store on disk, with random emails on every core. Store.User by id (one Get where by-email does
// two) is measured the same way, and both are compared with a Go map from email to user built from the same
// users: the in-memory ceiling. The load itself, applied straight to the store without raft, is timed too.
func userReads(cfg Config) Scenario {
	return Scenario{
		Name:     "read/user-by-email",
		Baseline: "Go map[email]*User of the same users (in-memory ceiling)",
		Run: func(ctx context.Context) (Figures, error) {
			if cfg.Users < 1 {
				return nil, errors.New("the read scenario needs at least one user")
			}
			dir, err := os.MkdirTemp(cfg.Dir, "postern-bench-read-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			store, err := directory.Open(filepath.Join(dir, "directory"), directory.Options{Logger: cfg.logger()})
			if err != nil {
				return nil, err
			}
			defer store.Close()

			log := cfg.logger()
			log.Info("loading users", "users", cfg.Users, "per_command", usersPerCommand)
			start := time.Now()
			users, err := loadUsers(ctx, store, cfg.Users)
			if err != nil {
				return nil, err
			}
			loadTime := time.Since(start)
			log.Info("users loaded", "users", cfg.Users, "elapsed", loadTime.Round(time.Millisecond))

			byEmail := make(map[string]*directory.User, len(users))
			for i := range users {
				byEmail[users[i].Email] = &users[i]
			}
			if err := checkReads(ctx, store, users, byEmail); err != nil {
				return nil, err
			}

			workers := runtime.GOMAXPROCS(0)
			reads := func(d time.Duration, read func(u *directory.User) error) (*measure, error) {
				return closedLoop(ctx, workers, d, func(w int) func(context.Context) error {
					rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
					return func(context.Context) error { return read(&users[rng.IntN(len(users))]) }
				})
			}
			byEmailRead := func(u *directory.User) error {
				_, err := store.UserByEmail(benchTenant, u.Email)
				return err
			}
			byIDRead := func(u *directory.User) error {
				_, err := store.User(benchTenant, u.ID)
				return err
			}
			// Right after the load, the first pass over the keys runs markedly slower than the next ones
			// (Badger's tables and block cache warming up); a running edge is warm, so warm up, untimed.
			log.Info("warming up reads", "for", cfg.Duration)
			for _, read := range []func(*directory.User) error{byEmailRead, byIDRead} {
				if _, err := reads(cfg.Duration/2, read); err != nil {
					return nil, fmt.Errorf("warming up reads: %w", err)
				}
			}
			email, err := reads(cfg.Duration, byEmailRead)
			if err != nil {
				return nil, fmt.Errorf("reading users by email: %w", err)
			}
			id, err := reads(cfg.Duration, byIDRead)
			if err != nil {
				return nil, fmt.Errorf("reading users by id: %w", err)
			}
			inMemory, err := reads(cfg.Duration, func(u *directory.User) error {
				if byEmail[u.Email] == nil {
					return fmt.Errorf("user %s is missing from the map", u.Email)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("reading users from the map: %w", err)
			}

			figs := throughput("UserByEmail ", "reads/s", email, inMemory)
			figs = append(figs, throughput("User by id ", "reads/s", id, inMemory)...)
			return append(figs,
				latency(fmt.Sprintf("load %s users (%s per command, no raft)", formatRate(float64(cfg.Users)),
					formatRate(usersPerCommand)), loadTime),
				rate("load rate (users/s)", float64(cfg.Users)/loadTime.Seconds()),
			), nil
		},
	}
}

// loadUsers creates the bench tenant and n users in it by applying commands to the store directly, as raft's
// apply would, while a second goroutine builds and encodes the next commands. Users have an email and a
// profile, no password. It returns the users as created.
func loadUsers(ctx context.Context, store *directory.Store, n int) ([]directory.User, error) {
	now := time.Now()
	tenant, err := directory.NewCommand(now, "bench",
		directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: benchTenant})).Encode()
	if err != nil {
		return nil, err
	}
	if _, err := store.Apply(1, tenant); err != nil {
		return nil, fmt.Errorf("creating the bench tenant: %w", err)
	}

	users := make([]directory.User, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	encoded := make(chan []byte, 4)
	encodeErr := make(chan error, 1)
	go func() {
		defer close(encoded)
		for lo := 0; lo < n; lo += usersPerCommand {
			hi := min(lo+usersPerCommand, n)
			ops := make([]directory.Op, 0, hi-lo)
			for i := lo; i < hi; i++ {
				id := directory.NewID()
				users[i] = directory.User{
					ID: id, Tenant: benchTenant, Email: fmt.Sprintf("%s.%d@example.com", id[:6], i), EmailVerified: true,
					Profile: directory.Profile{GivenName: "Bench", FamilyName: fmt.Sprintf("User %d", i), Locale: "en"},
				}
				ops = append(ops, directory.MakeOp(directory.OpUserCreate, users[i]))
			}
			b, err := directory.NewCommand(now, "bench", ops...).Encode()
			if err != nil {
				encodeErr <- err
				return
			}
			select {
			case encoded <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	idx := uint64(2)
	for b := range encoded {
		if _, err := store.Apply(idx, b); err != nil {
			return nil, fmt.Errorf("applying load command %d: %w", idx, err)
		}
		idx++
	}
	select {
	case err := <-encodeErr:
		return nil, fmt.Errorf("encoding load commands: %w", err)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// checkReads proves, before anything is timed, that a sample of users reads back right by email (in another
// case, too), by id and from the map, and that an unknown email is not found.
func checkReads(ctx context.Context, store *directory.Store, users []directory.User, byEmail map[string]*directory.User) error {
	rng := rand.New(rand.NewPCG(1, 2))
	for range min(1000, len(users)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		want := &users[rng.IntN(len(users))]
		got, err := store.UserByEmail(benchTenant, strings.ToUpper(want.Email))
		if err != nil || got.ID != want.ID || got.Email != want.Email {
			return fmt.Errorf("checking reads: UserByEmail(%q) = %q, %v; want %q", want.Email, got.ID, err, want.ID)
		}
		got, err = store.User(benchTenant, want.ID)
		if err != nil || got.Email != want.Email {
			return fmt.Errorf("checking reads: User(%q) = %q, %v; want %q", want.ID, got.Email, err, want.Email)
		}
		if byEmail[want.Email] != want {
			return fmt.Errorf("checking reads: the map has no %q", want.Email)
		}
	}
	if _, err := store.UserByEmail(benchTenant, "nobody@example.com"); !errors.Is(err, directory.ErrNotFound) {
		return fmt.Errorf("checking reads: an unknown email gave %v, want not found", err)
	}
	return nil
}
