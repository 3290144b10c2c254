package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"
)

// Config sizes every scenario. The zero value is not useful; [DefaultConfig] is what `make bench` runs.
type Config struct {
	// Duration is how long each timed phase of a scenario runs (a scenario may have several, and measures
	// its baseline for as long again).
	Duration time.Duration
	// Users is how many users the read scenarios load into one tenant.
	Users int
	// Writers is how many proposers write concurrently in the write scenarios (and how many writers the
	// fsync baseline has), enough for raft to batch log appends. The edge scenarios run as many clients,
	// each on its own keep-alive connection (password sign-ins excepted: argon2id sizes those).
	Writers int
	// Dir is where scenarios make their temporary data directories; "" means os.TempDir(). It must be on
	// the disk being measured: a tmpfs makes every fsync free.
	Dir string
	// ProfileDir, when set, receives CPU profiles of the Postern processes a scenario measures, taken
	// during its main timed phase (e.g. proxy-edge-bearer.pprof): where the edge spends its time under
	// load, to read with `go tool pprof`.
	ProfileDir string
	// Logger receives progress (loading, cluster start-up); nil discards it.
	Logger *slog.Logger
}

// DefaultConfig is the full-size run.
func DefaultConfig() Config {
	return Config{Duration: 5 * time.Second, Users: 1_000_000, Writers: 64}
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Logger
}

// Scenario is one measurement and the baseline it is compared with.
type Scenario struct {
	// Name identifies the scenario in the table and for -run; "area/variant".
	Name string
	// Baseline names what the scenario's figures are compared with, measured in the same run.
	Baseline string
	// Run measures. It cleans up after itself (data directories, nodes) whether it succeeds or not, and
	// stops early, with ctx's error, when ctx ends.
	Run func(ctx context.Context) (Figures, error)

	// binaries are the commands the scenario runs as child processes, if any (postern, the bench's peer):
	// each built on first use and shared by the scenarios of one Scenarios call, they are removed by Run
	// after the last of them (or with Config.Dir by whoever removes that).
	binaries []*goBinary
}

// Scenarios is the registry: every scenario, in the order the table lists them. A new scenario is a new line
// here.
func Scenarios(cfg Config) []Scenario {
	bin := &goBinary{pkg: "postern.dev/postern/cmd/postern", parent: cfg.Dir, log: cfg.logger()}
	peer := &goBinary{pkg: peerPackage, parent: cfg.Dir, log: cfg.logger()}
	return []Scenario{
		raftWrites(cfg, 1),
		raftWrites(cfg, 3),
		userReads(cfg),
		oidcClientCredentials(cfg, bin),
		oidcAuthCode(cfg, bin),
		oidcPasswordSignIn(cfg, bin),
		proxyForward(cfg, bin, peer),
		wasmExtensionCall(cfg),
	}
}

// Select keeps the scenarios whose name matches re (all of them when re is nil).
func Select(all []Scenario, re *regexp.Regexp) []Scenario {
	if re == nil {
		return all
	}
	var out []Scenario
	for _, s := range all {
		if re.MatchString(s.Name) {
			out = append(out, s)
		}
	}
	return out
}

// Result is what one scenario gave.
type Result struct {
	Scenario Scenario
	Figures  Figures
	Err      error
	Elapsed  time.Duration
}

// Run runs the scenarios one after the other (never concurrently: they would measure each other) and
// collects their results; a failed scenario does not stop the others, but an ended ctx does.
func Run(ctx context.Context, scenarios []Scenario, log *slog.Logger) Report {
	if log == nil {
		log = Config{}.logger()
	}
	var r Report
	for _, s := range scenarios {
		if ctx.Err() != nil {
			r.Results = append(r.Results, Result{Scenario: s, Err: fmt.Errorf("not run: %w", ctx.Err())})
			continue
		}
		log.Info("running scenario", "scenario", s.Name)
		start := time.Now()
		figs, err := s.Run(ctx)
		res := Result{Scenario: s, Figures: figs, Err: err, Elapsed: time.Since(start)}
		if err != nil {
			log.Error("scenario failed", "scenario", s.Name, "error", err)
		} else {
			log.Info("scenario done", "scenario", s.Name, "elapsed", res.Elapsed.Round(time.Millisecond))
		}
		r.Results = append(r.Results, res)
	}
	for _, s := range scenarios {
		for _, b := range s.binaries {
			b.remove()
		}
	}
	return r
}

// Unit says how a figure's value reads.
type Unit int

// Units of figures.
const (
	PerSecond   Unit = iota // a rate: operations per second
	Nanoseconds             // a duration (a latency, a load time)
)

// Figure is one measured value and, when HasBaseline, the baseline's value of the same figure.
type Figure struct {
	Name        string
	Unit        Unit
	Value       float64
	Baseline    float64
	HasBaseline bool
	// BaselineName names this figure's baseline when it is not the scenario's.
	BaselineName string
}

// Figures are a scenario's results, in the order the table lists them.
type Figures []Figure

// Ratio is Value/Baseline (0 without a baseline). Above 1 means more operations per second, or a longer
// latency, than the baseline.
func (f Figure) Ratio() float64 {
	if !f.HasBaseline || f.Baseline == 0 {
		return 0
	}
	return f.Value / f.Baseline
}

// rate and latency build figures.
func rate(name string, v float64) Figure { return Figure{Name: name, Unit: PerSecond, Value: v} }
func latency(name string, d time.Duration) Figure {
	return Figure{Name: name, Unit: Nanoseconds, Value: float64(d)}
}

func (f Figure) against(base float64) Figure {
	f.Baseline, f.HasBaseline = base, true
	return f
}

// againstNamed compares with a baseline other than the scenario's.
func (f Figure) againstNamed(name string, base float64) Figure {
	f.BaselineName = name
	return f.against(base)
}
