// Go anchor for the Beamline benchmark suite.
//
//	GOMAXPROCS=N go_anchor [-filter REGEX] [-out FILE] [-quiet]
//	go_anchor -list [-filter REGEX]
//
// Implements the workloads of bench/README.md with goroutines and channels and prints
// {"workloads":[{"name":...,"unit":...,"value":...}, ...]} on stdout (and into FILE with
// -out). Progress goes to stderr.
//
// A process is a goroutine; its mailbox is a buffered channel. The same-scheduler
// workloads (ctx_switch, pingpong_same_sched) run with runtime.GOMAXPROCS(1); the others
// with the GOMAXPROCS the program was started with. call_with_500k_queued and
// genserver_call_500k_queued are omitted: a channel has no selective receive, so there is
// nothing to compare. So are
// link_exit_cascade and monitor_down_latency (goroutines have no links or monitors),
// hibernated_process_bytes (no hibernation) and priority_high_latency_under_load (no
// priorities).
//
// The OTP workloads have goroutine counterparts where one is cheap and meaningful: a
// "gen_server" is a goroutine serving a request channel (a call carries the reply
// channel; stop closes the request channel and waits for the goroutine's exit), a
// "task" a goroutine sending its result on a channel. There is none for the supervisor,
// registry and agent workloads, nor for idle_genserver_bytes.
//
// -filter REGEX keeps the workloads whose name matches REGEX (a search, as in Google
// Benchmark's --benchmark_filter; a leading '-' negates it). -quiet leaves out the header
// line and starts each workload's line with "Go", for a runner that runs one row at a time.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand"
	"net"
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
	factN            = 10_000
	factChunk        = 10
	gsRounds         = 10_000
	gsCalls          = 100_000
	gsCasts          = 1_000_000
	taskN            = 100_000

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
	// The sleep-bound workloads (seconds each): no warm-up, exactly sleepRuns runs.
	sleepRuns = 3
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
		{name: "pingpong_cross_sched", unit: "ns", run: pingpongCross},
		{name: "pingpong_any_sched", unit: "ns", run: pingpong},
		{name: "ring_1000x1000", unit: "ns", run: ring},
		{name: "million_procs", unit: "ms", run: millionProcs},
		{name: "idle_process_bytes", unit: "bytes", measure: idleProcessBytes},
		{name: "send_throughput", unit: "ns", run: sendThroughput},
		{name: "mailbox_20_senders", unit: "ns", run: mailbox20Senders},
		{name: "timers_100k", unit: "ms", run: timers},
		{name: "fact10k_reduce", unit: "ms", run: fact10kReduce},
		{name: "fact10k_genserver", unit: "ms", run: fact10kGenserver},
		{name: "fact10k_genserver_rate", unit: "per_ms", run: fact10kGenserverRate},
		{name: "fact10k_stream", unit: "ms", run: fact10kStream},
		{name: "fact10k_concurrent", unit: "ms", run: fact10kConcurrent},
		{name: "two_email_tasks_1s", unit: "ms", measure: sleepBound(twoEmailTasks)},
		{name: "async_stream_12x500ms_c4", unit: "ms", measure: sleepBound(asyncStream12)},
		{name: "yield_many_timeouts", unit: "ms", measure: sleepBound(yieldManyTimeouts)},
		{name: "genserver_start_call_stop", unit: "ns", run: genserverStartCallStop},
		{name: "genserver_call_rtt", unit: "ns", run: genserverCallRTT},
		{name: "genserver_cast", unit: "ns", run: genserverCast},
		{name: "task_async_await", unit: "ns", run: taskAsyncAwait},
		{name: "io_sleep_100k", unit: "ms", run: ioSleep100k},
		{name: "echo_rps", unit: "per_s", run: echoRPS},
		{name: "accept_rate", unit: "per_s", run: acceptRate},
		{name: "file_read_4k_iops", unit: "per_s", run: fileRead4kIOPS},
		{name: "many_to_one_call", unit: "per_s", run: manyToOneCall},
		{name: "many_to_one_call_partitioned", unit: "per_s", run: manyToOneCallPartitioned},
		{name: "skynet_1m", unit: "ms", run: skynet1m},
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
	quiet := flag.Bool("quiet", false, "no header line; each workload's line names the anchor (a runner's turns)")
	list := flag.Bool("list", false, "print the names of the workloads the filter keeps, one a line, and exit")
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

	if *list {
		for _, w := range workloads() {
			if keep(w.name) {
				fmt.Println(w.name)
			}
		}
		return
	}

	procs := runtime.GOMAXPROCS(0)
	prefix := "  "
	if *quiet {
		prefix = "  Go "
	} else {
		fmt.Fprintf(os.Stderr, "Go: %s, GOMAXPROCS %d\n", runtime.Version(), procs)
	}

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
		fmt.Fprintf(os.Stderr, "%s%s: %.3f %s (median of %d, min %.3f, max %.3f)\n",
			prefix, w.name, v, w.unit, len(vals), lo, hi)
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

// 100k goroutines (BENCH_SIZE), each sends done to the parent and exits.
func spawnExit() float64 {
	n := benchSize(spawnExitN)
	done := make(chan struct{}, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() { done <- struct{}{} }()
	}
	for i := 0; i < n; i++ {
		<-done
	}
	return perOp(time.Since(start), n)
}

// Round trips of an integer between the driver and one echo goroutine.
func pingpong() float64 {
	return pingpongPair(false)
}

// pingpongCross is pingpong with each goroutine locked to an OS thread of its
// own (runtime.LockOSThread), Go's only way to keep two goroutines on two
// threads, so that every message crosses threads as it crosses cores in
// Beamline's row and the BEAM's (bound schedulers).  Left to itself Go runs
// the pair on one P: that figure is pingpong_any_sched.
func pingpongCross() float64 {
	return pingpongPair(true)
}

// pingpongPair times pingpongN round trips between two goroutines, each on an
// OS thread of its own when locked.
func pingpongPair(locked bool) float64 {
	ping := make(chan int, 1)
	pong := make(chan int, 1)
	done := make(chan float64)
	lock := func() {
		if locked {
			runtime.LockOSThread()
		}
	}
	go func() {
		lock()
		for v := range ping {
			pong <- v
		}
	}()
	go func() {
		lock()
		start := time.Now()
		for i := 0; i < pingpongN; i++ {
			ping <- i
			<-pong
		}
		d := time.Since(start)
		close(ping)
		done <- perOp(d, pingpongN)
	}()
	return <-done
}

// Ring of 1000 goroutines, a token (hops left) goes round 1000 times. Only the token
// passing is timed, not building the ring. BENCH_SIZE sets the ring's size; the laps
// keep the hops at ringProcs x ringLaps (at least one lap).
func ring() float64 {
	procs := benchSize(ringProcs)
	laps := ringProcs * ringLaps / procs
	if laps < 1 {
		laps = 1
	}
	hops := procs * laps
	in := make([]chan int, procs)
	for i := range in {
		in[i] = make(chan int, 1)
	}
	done := make(chan struct{}, 1)
	for i := 0; i < procs; i++ {
		me, next := in[i], in[(i+1)%procs]
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

// ---------------------------------------------------------------- OTP workloads

// sleepBound runs a sleep-bound workload sleepRuns times, without a warm-up.
func sleepBound(run func() float64) func() []float64 {
	return func() []float64 {
		vals := make([]float64, 0, sleepRuns)
		for i := 0; i < sleepRuns; i++ {
			runtime.GC()
			vals = append(vals, run())
		}
		return vals
	}
}

func msSince(t time.Time) float64 {
	return float64(time.Since(t).Nanoseconds()) / 1e6
}

// factorial(10_000) as seed 000 computes it (see bench/README.md), with math/big. Every
// run checks its result against the reference (MulRange, computed once, untimed).
var factExpected *big.Int

func factTimed(f func() *big.Int) float64 {
	if factExpected == nil {
		factExpected = new(big.Int).MulRange(1, factN)
	}
	start := time.Now()
	v := f()
	ms := msSince(start)
	if v.Cmp(factExpected) != 0 {
		panic(fmt.Sprintf("factorial(%d) came out wrong", factN))
	}
	return ms
}

// reduceInts is Enum.reduce(lo..hi, 1, &(&1 * &2)): the running product times each number.
func reduceInts(lo, hi int64) *big.Int {
	acc, x := big.NewInt(1), new(big.Int)
	for i := lo; i <= hi; i++ {
		acc.Mul(acc, x.SetInt64(i))
	}
	return acc
}

func reduceBig(list []*big.Int) *big.Int {
	acc := big.NewInt(1)
	for _, x := range list {
		acc.Mul(acc, x)
	}
	return acc
}

// recStream is the seed's rec_stream/1: while more than 10 numbers are left, replace
// each chunk of 10 by its product; then the product of the rest.
func recStream(list []*big.Int) *big.Int {
	for len(list) > factChunk {
		next := make([]*big.Int, 0, (len(list)+factChunk-1)/factChunk)
		for i := 0; i < len(list); i += factChunk {
			j := i + factChunk
			if j > len(list) {
				j = len(list)
			}
			next = append(next, reduceBig(list[i:j]))
		}
		list = next
	}
	return reduceBig(list)
}

func intsBig(lo, hi int64) []*big.Int {
	list := make([]*big.Int, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		list = append(list, big.NewInt(i))
	}
	return list
}

func fact10kReduce() float64 {
	return factTimed(func() *big.Int { return reduceInts(1, factN) })
}

func fact10kStream() float64 {
	return factTimed(func() *big.Int { return recStream(intsBig(1, factN)) })
}

// A "gen_server" per chunk: a goroutine holding its chunk, answering each request (a
// reply channel) with the chunk's product; started, called once and stopped (close
// the request channel, wait for its exit), one chunk after the other.
func factServer(lo, hi int64, req chan chan *big.Int, done chan struct{}) {
	for r := range req {
		r <- reduceInts(lo, hi)
	}
	done <- struct{}{}
}

func factWorker() *big.Int {
	var products []*big.Int
	reply := make(chan *big.Int, 1)
	for lo := int64(1); lo <= factN; lo += factChunk {
		hi := lo + factChunk - 1
		if hi > factN {
			hi = factN
		}
		req, done := make(chan chan *big.Int), make(chan struct{})
		go factServer(lo, hi, req, done)
		req <- reply
		products = append(products, <-reply)
		close(req)
		<-done
	}
	return reduceBig(products)
}

func fact10kGenserver() float64 {
	return factTimed(factWorker)
}

func fact10kGenserverRate() float64 {
	return float64((factN+factChunk-1)/factChunk) / factTimed(factWorker)
}

// The chunks split into one contiguous slice per P; each slice's product by recStream
// in its own goroutine; the slice products multiplied in order.
func fact10kConcurrent() float64 {
	return factTimed(func() *big.Int {
		slices := int64(runtime.GOMAXPROCS(0))
		chunks := int64((factN + factChunk - 1) / factChunk)
		per := (chunks + slices - 1) / slices * factChunk
		var outs []chan *big.Int
		for lo := int64(1); lo <= factN; lo += per {
			hi := lo + per - 1
			if hi > factN {
				hi = factN
			}
			out := make(chan *big.Int, 1)
			outs = append(outs, out)
			go func(lo, hi int64) { out <- recStream(intsBig(lo, hi)) }(lo, hi)
		}
		products := make([]*big.Int, 0, len(outs))
		for _, out := range outs {
			products = append(products, <-out)
		}
		return reduceBig(products)
	})
}

// Two goroutines that each sleep 1 s, awaited.
func twoEmailTasks() float64 {
	start := time.Now()
	done := make(chan string, 2)
	for _, email := range []string{"a@com", "b@com"} {
		go func(e string) {
			time.Sleep(time.Second)
			done <- e
		}(email)
	}
	<-done
	<-done
	return msSince(start)
}

// 12 items of 500 ms, at most 4 goroutines at a time (a new one as soon as one ends).
func asyncStream12() float64 {
	start := time.Now()
	sem := make(chan struct{}, 4)
	done := make(chan int, 12)
	for i := 0; i < 12; i++ {
		sem <- struct{}{}
		go func(i int) {
			time.Sleep(500 * time.Millisecond)
			<-sem
			done <- i
		}(i)
	}
	for i := 0; i < 12; i++ {
		<-done
	}
	return msSince(start)
}

// 10 goroutines sleep i x 100 ms; the driver collects answers for 500 ms, then cancels
// the others and waits for them to exit (Task.shutdown waits for the task's end).
func yieldManyTimeouts() float64 {
	start := time.Now()
	answers := make(chan int, 10)
	cancel := make(chan struct{})
	var wg sync.WaitGroup
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t := time.NewTimer(time.Duration(i) * 100 * time.Millisecond)
			select {
			case <-t.C:
				answers <- i
			case <-cancel:
				t.Stop()
			}
		}(i)
	}
	deadline := time.NewTimer(500 * time.Millisecond)
	var got []int
wait:
	for {
		select {
		case v := <-answers:
			got = append(got, v)
		case <-deadline.C:
			break wait
		}
	}
	close(cancel)
	wg.Wait()
	ms := msSince(start)
	if len(got) < 4 || len(got) > 5 {
		panic(fmt.Sprintf("yield_many_timeouts: %v answered", got))
	}
	for k, v := range got {
		if v != k+1 {
			panic(fmt.Sprintf("yield_many_timeouts: %v answered", got))
		}
	}
	return ms
}

// A "gen_server": one request channel carrying casts and calls in order.
type gsMsg struct {
	cast  bool
	reply chan int // calls: where the answer goes
}

func gsServer(box chan gsMsg, done chan struct{}) {
	count := 0
	for m := range box {
		if m.cast {
			count++
		} else {
			m.reply <- count
		}
	}
	done <- struct{}{}
}

func genserverStartCallStop() float64 {
	reply := make(chan int, 1)
	start := time.Now()
	for i := 0; i < gsRounds; i++ {
		box, done := make(chan gsMsg, 1), make(chan struct{})
		go gsServer(box, done)
		box <- gsMsg{reply: reply}
		<-reply
		close(box)
		<-done
	}
	return perOp(time.Since(start), gsRounds)
}

func genserverCallRTT() float64 {
	box, done := make(chan gsMsg, 1), make(chan struct{})
	go gsServer(box, done)
	reply := make(chan int, 1)
	start := time.Now()
	for i := 0; i < gsCalls; i++ {
		box <- gsMsg{reply: reply}
		<-reply
	}
	d := time.Since(start)
	close(box)
	<-done
	return perOp(d, gsCalls)
}

// 1M casts into a mailbox of capacity streamCap, then a call that answers once all
// casts have been handled.
func genserverCast() float64 {
	box, done := make(chan gsMsg, streamCap), make(chan struct{})
	go gsServer(box, done)
	reply := make(chan int, 1)
	start := time.Now()
	for i := 0; i < gsCasts; i++ {
		box <- gsMsg{cast: true}
	}
	box <- gsMsg{reply: reply}
	n := <-reply
	d := time.Since(start)
	close(box)
	<-done
	if n != gsCasts {
		panic(fmt.Sprintf("genserver_cast: the server handled %d casts", n))
	}
	return perOp(d, gsCasts)
}

// A goroutine sending its result on a channel, received at once; 100k times.
func taskAsyncAwait() float64 {
	start := time.Now()
	for i := 0; i < taskN; i++ {
		ch := make(chan int, 1)
		go func() { ch <- 1 }()
		<-ch
	}
	return perOp(time.Since(start), taskN)
}

// ---- I/O ----

// 100k goroutines each sleep 10 ms: ms until the last has woken and reported.
func ioSleep100k() float64 {
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(100000)
	for i := 0; i < 100000; i++ {
		go func() {
			time.Sleep(10 * time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	return msSince(start)
}

const echoConns, echoRounds = 64, 1000

// 64 loopback connections, 32-byte messages in lockstep: round trips per second.
func echoRPS() float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return math.NaN()
	}
	defer l.Close()
	go func() {
		for i := 0; i < echoConns; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 32)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	var bad int64
	var mu sync.Mutex
	wg.Add(echoConns)
	for i := 0; i < echoConns; i++ {
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				mu.Lock()
				bad++
				mu.Unlock()
				return
			}
			defer c.Close()
			out, in := make([]byte, 32), make([]byte, 32)
			for r := 0; r < echoRounds; r++ {
				out[0] = byte(r)
				if _, err := c.Write(out); err != nil {
					break
				}
				if _, err := io.ReadFull(c, in); err != nil || in[0] != out[0] {
					mu.Lock()
					bad++
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if bad != 0 {
		return math.NaN()
	}
	return float64(echoConns*echoRounds) / time.Since(start).Seconds()
}

const acceptClients, acceptEach = 4, 2500

// 4 clients connect and close; the server accepts and closes: connections per second.
func acceptRate() float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return math.NaN()
	}
	defer l.Close()
	start := time.Now()
	done := make(chan int)
	go func() {
		n := 0
		for ; n < acceptClients*acceptEach; n++ {
			c, err := l.Accept()
			if err != nil {
				break
			}
			c.Close()
		}
		done <- n
	}()
	var wg sync.WaitGroup
	wg.Add(acceptClients)
	for i := 0; i < acceptClients; i++ {
		go func() {
			defer wg.Done()
			for k := 0; k < acceptEach; k++ {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if <-done != acceptClients*acceptEach {
		return math.NaN()
	}
	return float64(acceptClients*acceptEach) / time.Since(start).Seconds()
}

const fileBytes, readers, readsEach = 64 << 20, 16, 4000

var benchFile *os.File

// 16 goroutines, random 4 KiB ReadAt of a 64 MiB file in the page cache: reads per second.
func fileRead4kIOPS() float64 {
	if benchFile == nil {
		f, err := os.CreateTemp("", "go_bench_*.dat")
		if err != nil {
			return math.NaN()
		}
		os.Remove(f.Name())
		blk := make([]byte, 4096)
		for b := 0; b < fileBytes/4096; b++ {
			binary.LittleEndian.PutUint32(blk, uint32(b))
			if _, err := f.WriteAt(blk, int64(b)*4096); err != nil {
				return math.NaN()
			}
		}
		benchFile = f
	}
	start := time.Now()
	var wg sync.WaitGroup
	var bad int64
	var mu sync.Mutex
	wg.Add(readers)
	for i := 0; i < readers; i++ {
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			buf := make([]byte, 4096)
			for k := 0; k < readsEach; k++ {
				b := rng.Intn(fileBytes / 4096)
				if _, err := benchFile.ReadAt(buf, int64(b)*4096); err != nil ||
					binary.LittleEndian.Uint32(buf) != uint32(b) {
					mu.Lock()
					bad++
					mu.Unlock()
					return
				}
			}
		}(int64(i) + time.Now().UnixNano())
	}
	wg.Wait()
	if bad != 0 {
		return math.NaN()
	}
	return float64(readers*readsEach) / time.Since(start).Seconds()
}
