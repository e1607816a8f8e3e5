package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// runResult is everything one run measured, as written to bench/results/.
type runResult struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	// Steps are the parts of the run in order, each with its wall time.
	Steps []step `json:"steps"`
	// Phases are the measured loads, with throughput and latency.
	Phases []phase  `json:"phases"`
	Goals  []goal   `json:"goals"`
	Notes  []string `json:"notes,omitempty"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
	// ServerLog is the file the servers' output went to.
	ServerLog string `json:"server_log,omitempty"`
}

type settings struct {
	PhaseSeconds float64 `json:"phase_seconds"`
	Users        int     `json:"users"`
}

type step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// machine says where a run ran; the load average tells whether others
// shared the machine.
type machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model,omitempty"`
	MemTotalMiB int64  `json:"mem_total_mib,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	GoVersion   string `json:"go_version"`
	GitCommit   string `json:"git_commit,omitempty"`
	// GitDirty says the tree had uncommitted changes to tracked files.
	GitDirty     bool   `json:"git_dirty"`
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
}

// goal is one goal with what was measured against it.
type goal struct {
	Name string `json:"name"`
	// Figure is what was measured, in the goal's units.
	Figure string `json:"figure"`
	// Ratio is the number the goal is about, when it is one number;
	// RatioText shows it as the output does.
	Ratio     *float64 `json:"ratio,omitempty"`
	RatioText string   `json:"ratio_text,omitempty"`
	Goal      string   `json:"goal"`
	// Status is met, missed, or n/a when this build cannot measure it.
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

const (
	met    = "met"
	missed = "missed"
	na     = "n/a"
)

func status(ok bool) string {
	if ok {
		return met
	}
	return missed
}

// bench runs the phases and records what they measure.
type bench struct {
	res runResult
	dur time.Duration
	// serverLog receives the output of every server the run starts (their
	// errors, such as the 503 of a login that waited too long for a
	// hashing slot), away from the figures.
	serverLog *os.File
	// only, when set, names the one step to run ("import").
	only string
}

func (b *bench) goal(g goal) {
	printGoal(g)
	b.res.Goals = append(b.res.Goals, g)
}

func printGoal(g goal) {
	fmt.Printf("%-6s %-52s %-40s %-12s goal %s\n", g.Status, g.Name, g.Figure, g.RatioText, g.Goal)
	if g.Note != "" {
		fmt.Printf("       (%s)\n", g.Note)
	}
}

// phase records a measured load and returns it.
func (b *bench) phase(s sample, name, work string) phase {
	p := s.phase(name, work)
	b.res.Phases = append(b.res.Phases, p)
	if p.Failed > 0 {
		b.note("%s: %d of %d requests failed (the servers' output says why)", name, p.Failed, p.Requests+s.lost)
	}
	return p
}

func (b *bench) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	fmt.Println("       " + n)
	b.res.Notes = append(b.res.Notes, n)
}

// step runs f and records its wall time under name.
func (b *bench) step(name string, f func() error) error {
	t0 := time.Now()
	err := f()
	b.res.Steps = append(b.res.Steps, step{Name: name, Seconds: round(time.Since(t0).Seconds(), 1)})
	return err
}

func machineInfo() machine {
	m := machine{
		CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GoVersion: runtime.Version(), LoadAvgStart: loadAvg(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, err := fileField("/proc/meminfo", "MemTotal:"); err == nil {
		m.MemTotalMiB = kb >> 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		m.GitCommit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		m.GitDirty = len(strings.TrimSpace(string(out))) > 0
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// fileField reads a "Field: N kB" line of a /proc file, in kB.
func fileField(path, field string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, path)
}

// resultsBase is where a run started at started writes its files, without
// the extension: dir/TIME.
func resultsBase(dir string, started time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: results are for reading
		return "", err
	}
	return filepath.Join(dir, started.UTC().Format("2006-01-02T15-04-05Z")), nil
}

// write saves the results as base.json and their chart as base.svg.
func (r *runResult) write(base string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil { //nolint:gosec // G306: results are for reading
		return err
	}
	return os.WriteFile(base+".svg", []byte(chart(r)), 0o644) //nolint:gosec // G306: as above
}

func readResult(path string) (*runResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r runResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &r, nil
}
