package main

import (
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// The chart's layout, in pixels.
const (
	chartWidth  = 1180
	labelX      = 16  // phase names
	tputX       = 300 // throughput plot
	latX        = 750 // latency plot
	plotWidth   = 360
	barHeight   = 12
	rowGap      = 10
	goalRowStep = 18
	targetX     = 430 // the goals' targets
	runX        = 710 // run A's figure and status; run B's runStep further
	runStep     = 230
)

// runColors tell run A from run B.
var runColors = []string{"#4e79a7", "#f28e2b"}

var statusColors = map[string]string{met: "#2e7d32", missed: "#c62828", na: "#757575"}

// chart draws one run, or two side by side: for every phase its throughput
// and its p99 latency (p50 marked) on log scales, so phases a thousand
// times apart fit one axis; then every goal with each run's figure and
// status.
func chart(runs ...*runResult) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	text := func(x, y float64, attrs, s string) {
		w(`<text x="%.1f" y="%.1f" %s>%s</text>`+"\n", x, y, attrs, html.EscapeString(s))
	}

	names, byName := phaseIndex(runs)
	var tputs, lats []float64
	for _, r := range runs {
		for _, p := range r.Phases {
			tputs = append(tputs, p.OKRPS)
			lats = append(lats, p.LatencyMS.P50, p.LatencyMS.P99)
		}
	}
	tput, lat := newLogScale(tputs, tputX), newLogScale(lats, latX)

	rowH := float64(len(runs)*barHeight + rowGap)
	top := 50.0 + 18*float64(len(runs)) + 30 // below the title, legend and axis titles
	plotBottom := top + rowH*float64(len(names))
	goalsTop := plotBottom + 50
	height := goalsTop + goalRowStep*float64(goalCount(runs)+1) + 20

	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	text(labelX, 24, `font-size="16" font-weight="bold"`, "gatehouse make bench")
	for i, r := range runs {
		y := 46 + 18*float64(i)
		w(`<rect x="%d" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", labelX, y-10, runColors[i])
		text(labelX+18, y, "", runLabel(string(rune('A'+i)), r))
	}
	axisY := top - 12
	text(tputX, axisY, `font-weight="bold"`, "throughput, 2xx/s (log scale)")
	text(latX, axisY, `font-weight="bold"`, "p99 latency, ms (log scale; tick: p50)")
	tput.grid(w, top, plotBottom, func(v float64) string { return gridLabel(v, "") })
	lat.grid(w, top, plotBottom, func(v float64) string { return gridLabel(v, " ms") })

	for row, name := range names {
		y0 := top + rowH*float64(row)
		text(labelX, y0+rowH/2+2, "", name)
		for i := range runs {
			p, ok := byName[i][name]
			if !ok {
				continue
			}
			y := y0 + float64(i*barHeight) + rowGap/2
			x1 := tput.x(p.OKRPS)
			w(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", tputX, y, x1-tputX, barHeight-2, runColors[i])
			text(x1+4, y+barHeight-3, `font-size="10"`, formatRate(p.OKRPS))
			x99, x50 := lat.x(p.LatencyMS.P99), lat.x(p.LatencyMS.P50)
			w(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", latX, y, x99-latX, barHeight-2, runColors[i])
			w(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" stroke-width="2"/>`+"\n", x50, x50, y, y+barHeight-2)
			text(x99+4, y+barHeight-3, `font-size="10"`, formatMS(p.LatencyMS.P99))
		}
	}

	text(labelX, goalsTop, `font-weight="bold"`, "goal")
	text(targetX, goalsTop, `font-weight="bold"`, "target")
	for i := range runs {
		text(float64(runX+runStep*i), goalsTop, fmt.Sprintf(`font-weight="bold" fill="%s"`, runColors[i]), string(rune('A'+i)))
	}
	gnames, gByName := goalIndex(runs)
	for row, name := range gnames {
		y := goalsTop + goalRowStep*float64(row+1)
		text(labelX, y, "", name)
		for i := range runs {
			g, ok := gByName[i][name]
			if !ok {
				continue
			}
			if i == 0 || g.Goal != gByName[0][name].Goal {
				text(targetX, y, "", g.Goal)
			}
			text(float64(runX+runStep*i), y, fmt.Sprintf(`fill="%s"`, statusColors[g.Status]), g.RatioText+"  "+g.Status)
		}
	}
	w("</svg>\n")
	return sb.String()
}

func runLabel(letter string, r *runResult) string {
	commit := r.Machine.GitCommit
	if len(commit) > 10 {
		commit = commit[:10]
	}
	if r.Machine.GitDirty {
		commit += "+changes"
	}
	s := fmt.Sprintf("%s: %s, commit %s, %d CPUs, %gs per phase, load average %s",
		letter, r.Started.UTC().Format("2006-01-02 15:04:05Z"), commit, r.Machine.CPUs, r.Settings.PhaseSeconds, r.Machine.LoadAvgStart)
	if r.Error != "" {
		s += " (stopped early: " + r.Error + ")"
	}
	return s
}

// phaseIndex lists the phase names of all runs, in the first run's order,
// and each run's phases by name.
func phaseIndex(runs []*runResult) ([]string, []map[string]phase) {
	var names []string
	seen := map[string]bool{}
	idx := make([]map[string]phase, len(runs))
	for i, r := range runs {
		idx[i] = map[string]phase{}
		for _, p := range r.Phases {
			if !seen[p.Name] {
				seen[p.Name] = true
				names = append(names, p.Name)
			}
			idx[i][p.Name] = p
		}
	}
	return names, idx
}

func goalIndex(runs []*runResult) ([]string, []map[string]goal) {
	var names []string
	seen := map[string]bool{}
	idx := make([]map[string]goal, len(runs))
	for i, r := range runs {
		idx[i] = map[string]goal{}
		for _, g := range r.Goals {
			if !seen[g.Name] {
				seen[g.Name] = true
				names = append(names, g.Name)
			}
			idx[i][g.Name] = g
		}
	}
	return names, idx
}

func goalCount(runs []*runResult) int {
	n, _ := goalIndex(runs)
	return len(n)
}

// logScale maps values to x over whole decades that hold all of them.
type logScale struct {
	lo, hi int // decades: 10^lo to 10^hi
	x0     float64
}

func newLogScale(values []float64, x0 float64) logScale {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return logScale{lo: 0, hi: 1, x0: x0}
	}
	s := logScale{lo: int(math.Floor(math.Log10(lo))), hi: int(math.Ceil(math.Log10(hi))), x0: x0}
	if s.hi <= s.lo {
		s.hi = s.lo + 1
	}
	return s
}

func (s logScale) x(v float64) float64 {
	if v <= 0 {
		return s.x0
	}
	t := (math.Log10(v) - float64(s.lo)) / float64(s.hi-s.lo)
	return s.x0 + plotWidth*math.Min(math.Max(t, 0), 1)
}

// grid draws a line and a label at every decade.
func (s logScale) grid(w func(string, ...any), top, bottom float64, label func(float64) string) {
	for d := s.lo; d <= s.hi; d++ {
		v := math.Pow(10, float64(d))
		x := s.x(v)
		w(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, x, top-4, bottom)
		w(`<text x="%.1f" y="%.1f" font-size="10" fill="#555" text-anchor="middle">%s</text>`+"\n", x, bottom+14, html.EscapeString(label(v)))
	}
}

// gridLabel names a power of ten: 0.1, 1, 10, 100, 1k, 10k.
func gridLabel(v float64, unit string) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk%s", v/1000, unit)
	}
	return fmt.Sprintf("%g%s", v, unit)
}

func formatRate(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func formatMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// runCompare draws the runs in files (one or two) into one SVG and prints
// their phases and goals side by side.
func runCompare(files []string, out string) error {
	if len(files) < 1 || len(files) > 2 {
		return errors.New("-compare takes one or two results files: A.json [B.json]")
	}
	var runs []*runResult
	for _, f := range files {
		r, err := readResult(f)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	if out == "" {
		stem := func(f string) string { return strings.TrimSuffix(filepath.Base(f), ".json") }
		name := stem(files[0])
		if len(files) == 2 {
			name += "_vs_" + stem(files[1])
		}
		out = filepath.Join(filepath.Dir(files[len(files)-1]), name+".svg")
	}
	if err := os.WriteFile(out, []byte(chart(runs...)), 0o644); err != nil { //nolint:gosec // G306: a chart is for reading
		return err
	}
	for i, r := range runs {
		fmt.Println(runLabel(string(rune('A'+i)), r))
	}
	names, phases := phaseIndex(runs)
	fmt.Printf("\n%-40s %28s %28s\n", "phase: 2xx/s, p99", "A", "B")
	for _, n := range names {
		fmt.Printf("%-40s", n)
		for i := range runs {
			if p, ok := phases[i][n]; ok {
				fmt.Printf(" %28s", fmt.Sprintf("%s/s, %s", formatRate(p.OKRPS), formatMS(p.LatencyMS.P99)))
			} else {
				fmt.Printf(" %28s", "-")
			}
		}
		fmt.Println()
	}
	gnames, goals := goalIndex(runs)
	fmt.Printf("\n%-56s %-38s %-20s %-20s\n", "goal", "target", "A", "B")
	for _, n := range gnames {
		target := ""
		cells := make([]string, len(runs))
		for i := range runs {
			cells[i] = "-"
			if g, ok := goals[i][n]; ok {
				target = g.Goal
				cells[i] = g.RatioText + " " + g.Status
			}
		}
		fmt.Printf("%-56s %-38s", n, target)
		for _, c := range cells {
			fmt.Printf(" %-20s", c)
		}
		fmt.Println()
	}
	fmt.Printf("\nchart: %s\n", out)
	return nil
}
