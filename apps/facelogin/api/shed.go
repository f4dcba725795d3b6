package api

import (
	"errors"
	"io"
	"sync"
	"time"
)

// Load shedding: what a replica holds at once is bounded, and past a bound the client is
// told "busy" with a time to come back instead of being queued. Login WebSockets are
// counted in total and per client address (socketGate); the bytes of frames and uploads
// being read or waiting for a recognizer share one budget (byteBudget). Decoded pixels are
// bounded by the face engine, which decodes only while holding one of its recognizers.

// shedRetry is the wait a client is told when a socket or the byte budget is not free: about
// what one login over the camera takes, after which its socket and bytes are given back.
const shedRetry = 3 * time.Second

// socketGate counts open login WebSockets, in total and per client address.
type socketGate struct {
	max, perClient int

	mu    sync.Mutex // guards total and byIP
	total int
	byIP  map[string]int
}

func newSocketGate(max, perClient int) *socketGate {
	return &socketGate{max: max, perClient: perClient, byIP: make(map[string]int)}
}

// enter counts one more socket of ip, unless the total or ip's sockets are at their cap.
func (g *socketGate) enter(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.max || g.byIP[ip] >= g.perClient {
		return false
	}
	g.total++
	g.byIP[ip]++
	return true
}

// leave gives back a socket of ip that entered.
func (g *socketGate) leave(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.byIP[ip]--; g.byIP[ip] <= 0 {
		delete(g.byIP, ip)
	}
}

// byteBudget bounds the bytes of frames and uploads held in memory at once.
type byteBudget struct {
	max int64

	mu   sync.Mutex // guards used
	used int64
}

// take reserves n bytes, unless that would exceed the budget.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// give returns n reserved bytes.
func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes reserved now.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// errNoBudget means the byte budget had no room for the data being read.
var errNoBudget = errors.New("the bytes in flight reached their budget")

// errTooLong means the data being read is longer than its limit.
var errTooLong = errors.New("longer than its limit")

// held is data read into memory under the byte budget; free gives its bytes back.
type held struct {
	data []byte
	b    *byteBudget
	n    int64
}

// free zeroes the data and returns its bytes to the budget. It may be called more than once.
func (h *held) free() {
	if h == nil || h.b == nil {
		return
	}
	clear(h.data[:cap(h.data)])
	h.b.give(h.n)
	h.b, h.data = nil, nil
}

// readChunk is the first reservation of a read and the least it grows by.
const readChunk = 32 << 10

// readHeld reads r to its end into memory, at most limit bytes (errTooLong beyond),
// reserving the buffer's bytes from b before they are allocated: errNoBudget when b has no
// room. Only the bytes that arrive are reserved, so an idle or slow sender holds little.
func readHeld(r io.Reader, limit int64, b *byteBudget) (*held, error) {
	h := &held{b: b}
	grow := func(want int64) error {
		if !b.take(want - h.n) {
			return errNoBudget
		}
		buf := make([]byte, len(h.data), want)
		copy(buf, h.data)
		clear(h.data)
		h.data, h.n = buf, want
		return nil
	}
	if err := grow(min(readChunk, limit+1)); err != nil {
		return nil, err
	}
	for {
		if int64(len(h.data)) == h.n {
			if h.n > limit {
				h.free()
				return nil, errTooLong
			}
			if err := grow(min(2*h.n, limit+1)); err != nil {
				h.free()
				return nil, err
			}
		}
		n, err := r.Read(h.data[len(h.data):h.n])
		h.data = h.data[:len(h.data)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(h.data)) > limit {
				h.free()
				return nil, errTooLong
			}
			return h, nil
		}
		if err != nil {
			h.free()
			return nil, err
		}
	}
}

// addressRate counts events per client address in fixed windows, all addresses' windows
// starting together, and remembers at most maxAddresses addresses per window.
type addressRate struct {
	max    int
	window time.Duration

	mu     sync.Mutex // guards start and counts
	start  time.Time
	counts map[string]int
}

// maxAddresses bounds the addresses one window remembers (a few MiB).
const maxAddresses = 100_000

func newAddressRate(max int, window time.Duration) *addressRate {
	return &addressRate{max: max, window: window, counts: make(map[string]int)}
}

// take counts one event of ip at now. Over ip's limit it returns limited and the time until
// the window ends; when the window already holds maxAddresses other addresses, full.
func (a *addressRate) take(ip string, now time.Time) (wait time.Duration, limited, full bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.start) >= a.window {
		a.start = now
		clear(a.counts)
	}
	wait = a.start.Add(a.window).Sub(now)
	n, known := a.counts[ip]
	switch {
	case n >= a.max:
		return wait, true, false
	case !known && len(a.counts) >= maxAddresses:
		return wait, false, true
	}
	a.counts[ip] = n + 1
	return 0, false, false
}

// shed is the answer when a bound of this replica is reached: 503 busy with shedRetry.
func shed() *apiError { return busy(shedRetry) }
