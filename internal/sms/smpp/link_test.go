package smpp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestConnWriterCoalesces writes many PDUs from many goroutines through one connWriter and
// checks that every PDU arrives whole (none interleaved with another), each exactly once,
// and that they shared write calls.
func TestConnWriterCoalesces(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	counting := &countingConn{Conn: a}
	w := newConnWriter(counting, 5*time.Second)
	const writers, each = 32, 50
	got := map[uint32]int{}
	readDone := make(chan error, 1)
	go func() {
		br := bufio.NewReader(b)
		for range writers * each {
			h, _, err := readPDU(br)
			if err != nil {
				readDone <- err
				return
			}
			if h.id != cmdEnquireLink {
				readDone <- errors.New("a PDU arrived mangled")
				return
			}
			got[h.seq]++
		}
		readDone <- nil
	}()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if err := w.write(encodeHeaderOnly(cmdEnquireLink, 0, uint32(g*each+i+1))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	for seq := uint32(1); seq <= writers*each; seq++ {
		if got[seq] != 1 {
			t.Fatalf("PDU %d arrived %d times", seq, got[seq])
		}
	}
	if n := counting.writes(); n >= writers*each {
		t.Errorf("%d PDUs took %d writes: nothing was coalesced", writers*each, n)
	} else {
		t.Logf("%d PDUs in %d writes", writers*each, n)
	}
}

// TestConnWriterReportsFailure: every writer of a failed write gets the error.
func TestConnWriterReportsFailure(t *testing.T) {
	a, b := net.Pipe()
	b.Close()
	defer a.Close()
	w := newConnWriter(a, time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := w.write(encodeHeaderOnly(cmdEnquireLink, 0, 1)); err == nil {
				t.Error("write to a closed peer succeeded")
			}
		})
	}
	wg.Wait()
}

type countingConn struct {
	net.Conn
	mu sync.Mutex
	n  int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	// A whole number of PDUs per write: the writer never splits one.
	for off := 0; off < len(p); {
		if len(p)-off < 16 {
			return 0, errors.New("a write ends inside a PDU header")
		}
		off += int(binary.BigEndian.Uint32(p[off:]))
		if off > len(p) {
			return 0, errors.New("a write ends inside a PDU")
		}
	}
	return c.Conn.Write(p)
}

func (c *countingConn) writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
