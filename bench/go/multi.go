// The workloads that keep every P busy at once (many_to_one_call,
// many_to_one_call_partitioned, skynet_1m), and the BENCH_SIZE parameter of the
// size-swept workloads. bench/README.md defines them; bench/workloads_multi.c and
// bench/beam/multi.exs implement the same ones.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const (
	m2oCalls  = 100_000 // calls per client
	skyLeaves = 1_000_000
	skyFanout = 10
	skySum    = 499_999_500_000 // 0 + 1 + ... + 999,999
)

// benchSize is the process count of the size-swept workloads (ring_1000x1000,
// spawn_exit): BENCH_SIZE from the environment (run.py --sweep size=...), else dflt.
// A BENCH_SIZE that is not an integer from 1 to 100,000,000 ends the program, so that
// no figure is taken at another size than asked for.
func benchSize(dflt int) int {
	s := os.Getenv("BENCH_SIZE")
	if s == "" {
		return dflt
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 100_000_000 {
		fmt.Fprintf(os.Stderr, "go_anchor: BENCH_SIZE=%s is not a count from 1 to 100000000\n", s)
		os.Exit(2)
	}
	return v
}

// A call to a "gen_server" goroutine: the reply channel is made for each call, as a
// gen_server call makes a fresh reference.
type callReq struct {
	reply chan int
}

func callServer(box chan callReq, done chan struct{}) {
	for r := range box {
		r.reply <- 0
	}
	done <- struct{}{}
}

// manyToOne: 2 x GOMAXPROCS client goroutines, released together, each make m2oCalls
// calls; client i calls server i mod servers. Calls per second from the release to the
// last client's end. Where the goroutines run is left to the Go scheduler.
func manyToOne(servers int) float64 {
	clients := 2 * runtime.GOMAXPROCS(0)
	boxes := make([]chan callReq, servers)
	done := make(chan struct{}, servers)
	for i := range boxes {
		// Room for every client's one outstanding request: a caller never blocks on
		// the send, as a gen_server's mailbox never refuses a message.
		boxes[i] = make(chan callReq, clients)
		go callServer(boxes[i], done)
	}
	start := make(chan struct{})
	var ready, finished sync.WaitGroup
	ready.Add(clients)
	finished.Add(clients)
	for i := 0; i < clients; i++ {
		box := boxes[i%servers]
		go func() {
			defer finished.Done()
			ready.Done()
			<-start
			for k := 0; k < m2oCalls; k++ {
				reply := make(chan int, 1)
				box <- callReq{reply}
				<-reply
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	finished.Wait()
	d := time.Since(t0)
	for _, box := range boxes {
		close(box)
	}
	for range boxes {
		<-done
	}
	return float64(clients*m2oCalls) / d.Seconds()
}

func manyToOneCall() float64 {
	return manyToOne(1)
}

// One server per P, the clients sharded by their index (PartitionSupervisor's routing
// of an integer key).
func manyToOneCallPartitioned() float64 {
	return manyToOne(runtime.GOMAXPROCS(0))
}

// skynet: a leaf sends its number; an inner node starts skyFanout goroutines over equal
// slices of its leaves and sends the sum of their answers.
func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	in := make(chan int64, skyFanout)
	sub := size / skyFanout
	for i := int64(0); i < skyFanout; i++ {
		go skynet(in, num+i*sub, sub)
	}
	var sum int64
	for i := 0; i < skyFanout; i++ {
		sum += <-in
	}
	out <- sum
}

func skynet1m() float64 {
	out := make(chan int64, 1)
	start := time.Now()
	go skynet(out, 0, skyLeaves)
	sum := <-out
	ms := msSince(start)
	if sum != skySum {
		panic(fmt.Sprintf("skynet_1m: the sum came out %d", sum))
	}
	return ms
}
