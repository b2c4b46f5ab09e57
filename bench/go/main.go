// Go anchor for the Beamline benchmark suite.
//
//	GOMAXPROCS=N go_anchor [-filter REGEX] [-out FILE]
//
// Implements the workloads of bench/README.md with goroutines and channels and prints
// {"workloads":[{"name":...,"unit":...,"value":...}, ...]} on stdout (and into FILE with
// -out). Progress goes to stderr.
//
// A process is a goroutine; its mailbox is a buffered channel. The same-scheduler
// workloads (ctx_switch, pingpong_same_sched) run with runtime.GOMAXPROCS(1); the others
// with the GOMAXPROCS the program was started with. call_with_500k_queued is omitted:
// a channel has no selective receive, so there is nothing to compare. So are
// link_exit_cascade and monitor_down_latency (goroutines have no links or monitors),
// hibernated_process_bytes (no hibernation) and priority_high_latency_under_load (no
// priorities).
//
// -filter REGEX keeps the workloads whose name matches REGEX (a search, as in Google
// Benchmark's --benchmark_filter; a leading '-' negates it).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"
)

// Sizes (identical in bench/beam/bench.exs; written down in bench/README.md).
const (
	ctxYieldsPerProc = 500_000
	spawnExitN       = 100_000
	pingpongN        = 100_000
	ringProcs        = 1000
	ringLaps         = 1000
	millionN         = 1_000_000
	idleN            = 100_000
	sendN            = 1_000_000
	mboxSenders      = 20
	mboxPerSender    = 100_000
	timersN          = 100_000
	timersDelay      = 100 * time.Millisecond

	// Capacity of a receiver's mailbox in the streaming workloads (send_throughput,
	// mailbox_20_senders). Channels that collect one reply per process are sized to hold
	// every reply, so no replier ever blocks.
	streamCap = 1024
)

// Measurement policy: one warm-up run, then at least minRuns measured runs; more runs
// are added while the measured runs of this workload took less than budget in total, up
// to maxRuns. The reported figure is the median.
const (
	minRuns = 5
	maxRuns = 15
	budget  = 3 * time.Second
)

type workload struct {
	name      string
	unit      string
	sameSched bool
	// run performs one measured run and returns the figure.
	run func() float64
	// measure, if set, replaces the generic harness and returns the measured runs.
	measure func() []float64
}

func workloads() []workload {
	return []workload{
		{name: "ctx_switch", unit: "ns", sameSched: true, run: ctxSwitch},
		{name: "spawn_exit", unit: "ns", run: spawnExit},
		{name: "pingpong_same_sched", unit: "ns", sameSched: true, run: pingpong},
		{name: "pingpong_cross_sched", unit: "ns", run: pingpong},
		{name: "ring_1000x1000", unit: "ns", run: ring},
		{name: "million_procs", unit: "ms", run: millionProcs},
		{name: "idle_process_bytes", unit: "bytes", measure: idleProcessBytes},
		{name: "send_throughput", unit: "ns", run: sendThroughput},
		{name: "mailbox_20_senders", unit: "ns", run: mailbox20Senders},
		{name: "timers_100k", unit: "ms", run: timers},
	}
}

// Execution order: idle_process_bytes first, so that the goroutines it counts get fresh
// runtime descriptors (the runtime never frees a goroutine descriptor; it reuses dead
// ones, which would hide their size from the memory statistics).
func executionOrder(ws []workload) []workload {
	var first, rest []workload
	for _, w := range ws {
		if w.name == "idle_process_bytes" {
			first = append(first, w)
		} else {
			rest = append(rest, w)
		}
	}
	return append(first, rest...)
}

type result struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
}

type output struct {
	Workloads []result `json:"workloads"`
	Runtime   struct {
		Go         string `json:"go"`
		GOMAXPROCS int    `json:"gomaxprocs"`
	} `json:"runtime"`
}

func main() {
	filter := flag.String("filter", "", "run only workloads whose name matches this regex (leading '-' negates)")
	out := flag.String("out", "", "also write the JSON to this file")
	flag.Parse()

	keep := func(string) bool { return true }
	if *filter != "" {
		pat, negate := *filter, false
		if pat[0] == '-' {
			pat, negate = pat[1:], true
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go_anchor: bad -filter: %v\n", err)
			os.Exit(2)
		}
		keep = func(name string) bool { return re.MatchString(name) != negate }
	}

	procs := runtime.GOMAXPROCS(0)
	fmt.Fprintf(os.Stderr, "Go: %s, GOMAXPROCS %d\n", runtime.Version(), procs)

	all := workloads()
	values := map[string]float64{}
	for _, w := range executionOrder(all) {
		if !keep(w.name) {
			continue
		}
		if w.sameSched {
			runtime.GOMAXPROCS(1)
		}
		var vals []float64
		if w.measure != nil {
			vals = w.measure()
		} else {
			vals = measure(w.run)
		}
		runtime.GOMAXPROCS(procs)
		v := median(vals)
		values[w.name] = v
		lo, hi := minMax(vals)
		fmt.Fprintf(os.Stderr, "  %s: %.3f %s (median of %d, min %.3f, max %.3f)\n",
			w.name, v, w.unit, len(vals), lo, hi)
	}

	var o output
	o.Workloads = []result{}
	for _, w := range all {
		if v, ok := values[w.name]; ok {
			o.Workloads = append(o.Workloads, result{w.name, w.unit, round3(v)})
		}
	}
	o.Runtime.Go = runtime.Version()
	o.Runtime.GOMAXPROCS = procs
	js, err := json.Marshal(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_anchor: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(string(js))
	if *out != "" {
		if err := os.WriteFile(*out, append(js, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "go_anchor: %v\n", err)
			os.Exit(1)
		}
	}
}

func round3(v float64) float64 {
	return math.Round(v*1000) / 1000
}

// ---------------------------------------------------------------- harness

// measure returns the figures of the measured runs.
func measure(run func() float64) []float64 {
	runtime.GC()
	run() // warm-up
	var vals []float64
	start := time.Now()
	for len(vals) < maxRuns && (len(vals) < minRuns || time.Since(start) < budget) {
		runtime.GC()
		vals = append(vals, run())
	}
	return vals
}

func minMax(v []float64) (float64, float64) {
	lo, hi := v[0], v[0]
	for _, x := range v[1:] {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	return lo, hi
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func perOp(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

// ---------------------------------------------------------------- workloads

// Two goroutines on one P, each calling runtime.Gosched in a loop.
func ctxSwitch() float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	for p := 0; p < 2; p++ {
		go func() {
			for i := 0; i < ctxYieldsPerProc; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return perOp(time.Since(start), 2*ctxYieldsPerProc)
}

// 100k goroutines, each sends done to the parent and exits.
func spawnExit() float64 {
	done := make(chan struct{}, spawnExitN)
	start := time.Now()
	for i := 0; i < spawnExitN; i++ {
		go func() { done <- struct{}{} }()
	}
	for i := 0; i < spawnExitN; i++ {
		<-done
	}
	return perOp(time.Since(start), spawnExitN)
}

// Round trips of an integer between the driver and one echo goroutine.
func pingpong() float64 {
	ping := make(chan int, 1)
	pong := make(chan int, 1)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	start := time.Now()
	for i := 0; i < pingpongN; i++ {
		ping <- i
		<-pong
	}
	d := time.Since(start)
	close(ping)
	return perOp(d, pingpongN)
}

// Ring of 1000 goroutines, a token (hops left) goes round 1000 times. Only the token
// passing is timed, not building the ring.
func ring() float64 {
	hops := ringProcs * ringLaps
	in := make([]chan int, ringProcs)
	for i := range in {
		in[i] = make(chan int, 1)
	}
	done := make(chan struct{}, 1)
	for i := 0; i < ringProcs; i++ {
		me, next := in[i], in[(i+1)%ringProcs]
		go func() {
			for t := range me {
				if t == 0 {
					done <- struct{}{}
					continue
				}
				next <- t - 1
			}
		}()
	}
	start := time.Now()
	in[0] <- hops
	<-done
	d := time.Since(start)
	for _, c := range in {
		close(c)
	}
	return perOp(d, hops)
}

// 1M goroutines blocked on their mailbox, each stopped by a message; each sends done
// before exiting. Whole run in ms.
func millionProcs() float64 {
	done := make(chan struct{}, millionN)
	start := time.Now()
	boxes := make([]chan struct{}, millionN)
	for i := range boxes {
		box := make(chan struct{}, 1)
		boxes[i] = box
		go func() {
			<-box
			done <- struct{}{}
		}()
	}
	for _, box := range boxes {
		box <- struct{}{}
	}
	for i := 0; i < millionN; i++ {
		<-done
	}
	return float64(time.Since(start).Nanoseconds()) / 1e6
}

// Memory of 100k goroutines blocked on their (empty) mailbox: delta of
// StackInuse+HeapInuse after runtime.GC(), / N; the mailbox channel is counted.
// Every run keeps its goroutines until all runs are done, so that each run creates
// fresh goroutine descriptors instead of reusing those of the previous run.
func idleProcessBytes() []float64 {
	inUse := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse + ms.HeapInuse
	}
	var alive [][]chan struct{}
	done := make(chan struct{}, idleN*(1+minRuns))
	var vals []float64
	for r := 0; r < 1+minRuns; r++ { // one warm-up run, then minRuns measured runs
		ready := make(chan struct{}, idleN)
		boxes := make([]chan struct{}, idleN)
		before := inUse()
		for i := range boxes {
			box := make(chan struct{}, 1)
			boxes[i] = box
			go func() {
				ready <- struct{}{}
				<-box
				done <- struct{}{}
			}()
		}
		for i := 0; i < idleN; i++ {
			<-ready
		}
		after := inUse()
		alive = append(alive, boxes)
		if r > 0 {
			vals = append(vals, (float64(after)-float64(before))/idleN)
		}
	}
	for _, boxes := range alive {
		for _, box := range boxes {
			box <- struct{}{}
		}
	}
	for i := 0; i < idleN*len(alive); i++ {
		<-done
	}
	return vals
}

// One sender (the driver) sends 1M integers; the receiver counts them and replies done.
func sendThroughput() float64 {
	box := make(chan int, streamCap)
	done := make(chan struct{}, 1)
	go func() {
		for i := 0; i < sendN; i++ {
			<-box
		}
		done <- struct{}{}
	}()
	start := time.Now()
	for i := 0; i < sendN; i++ {
		box <- i
	}
	<-done
	return perOp(time.Since(start), sendN)
}

// 20 senders x 100k integers into one receiver.
func mailbox20Senders() float64 {
	total := mboxSenders * mboxPerSender
	box := make(chan int, streamCap)
	done := make(chan struct{}, 1)
	go func() {
		for i := 0; i < total; i++ {
			<-box
		}
		done <- struct{}{}
	}()
	start := time.Now()
	for s := 0; s < mboxSenders; s++ {
		go func() {
			for i := 0; i < mboxPerSender; i++ {
				box <- i
			}
		}()
	}
	<-done
	return perOp(time.Since(start), total)
}

// 100k goroutines each sleep 100 ms and report their lateness; the figure is the p99
// lateness in ms.
func timers() float64 {
	late := make(chan time.Duration, timersN)
	for i := 0; i < timersN; i++ {
		go func() {
			start := time.Now()
			time.Sleep(timersDelay)
			late <- time.Since(start) - timersDelay
		}()
	}
	vals := make([]float64, timersN)
	for i := range vals {
		vals[i] = float64((<-late).Nanoseconds())
	}
	sort.Float64s(vals)
	rank := (99*timersN + 99) / 100 // nearest rank: ceil(0.99 * n)
	return vals[rank-1] / 1e6
}
