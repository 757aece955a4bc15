package sip

import (
	"context"
	"sync"
)

// callTable is the B2BUA's calls in progress, by the Call-ID of either leg (the in-dialog
// handlers find a request's call there), and the gate that admits new calls until the service
// stops.
type callTable struct {
	mu    sync.Mutex
	calls map[string]callRef // by Call-ID of either leg

	stop context.Context // cancelled when Run ends: calls hang up
	halt context.CancelFunc
	wg   sync.WaitGroup // call goroutines
}

// callRef is what an in-dialog request's Call-ID leads to: the call and which leg; the request
// still has to match that leg's dialog (dialogs.match).
type callRef struct {
	c    *call
	side int // 0: toward the caller (a), 1: toward the callee (b)
}

func newCallTable() *callTable {
	t := &callTable{calls: map[string]callRef{}}
	t.stop, t.halt = context.WithCancel(context.Background())
	return t
}

// begin admits a call goroutine; false once the service is stopping. done must follow a true.
func (t *callTable) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop.Err() != nil {
		return false
	}
	t.wg.Add(1)
	return true
}

// done ends a call goroutine begin admitted.
func (t *callTable) done() { t.wg.Done() }

// close stops admitting calls and tells those in progress to hang up; wait waits for them.
func (t *callTable) close() {
	t.mu.Lock()
	t.halt()
	t.mu.Unlock()
}

func (t *callTable) wait() { t.wg.Wait() }

// active is the number of calls in progress.
func (t *callTable) active() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.calls {
		if r.side == 0 {
			n++
		}
	}
	return n
}

func (t *callTable) lookup(id string) (callRef, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.calls[id]
	return r, ok
}

// register files c's leg side under its Call-ID; false when the Call-ID is another call's.
func (t *callTable) register(id string, c *call, side int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.calls[id]; ok && r.c != c {
		return false
	}
	t.calls[id] = callRef{c: c, side: side}
	return true
}

func (t *callTable) unregister(ids ...string) {
	t.mu.Lock()
	for _, id := range ids {
		delete(t.calls, id)
	}
	t.mu.Unlock()
}

// busy reports whether a call in progress uses the connection from src (as sipgo names a
// request's source): its caller's INVITE came from there, or its callee leg went there.
func (t *callTable) busy(src string) bool {
	t.mu.Lock()
	calls := make([]*call, 0, len(t.calls))
	for _, r := range t.calls {
		calls = append(calls, r.c)
	}
	t.mu.Unlock()
	for _, c := range calls {
		if c.a != nil && c.a.InviteRequest != nil && c.a.InviteRequest.Source() == src {
			return true
		}
		c.mu.Lock()
		b := c.b
		c.mu.Unlock()
		if b != nil && b.InviteRequest != nil && b.InviteRequest.Destination() == src {
			return true
		}
	}
	return false
}
