package smpp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// response is what the reader hands a waiting request.
type response struct {
	h    header
	body []byte
}

// link is one transceiver bind to the SMSC with its window and rate limit.
type link struct {
	c    *Carrier
	idx  int
	kind bindKind
	log  *slog.Logger

	window chan struct{} // one token per request in flight
	seq    atomic.Uint32
	bound  atomic.Bool

	mu      sync.Mutex
	conn    net.Conn
	pending map[uint32]chan response

	wmu sync.Mutex // serialises writes to a connection that is not a connWriter (binding)

	rmu      sync.Mutex // rate limiter
	nextSend time.Time
}

func newLink(c *Carrier, idx int, kind bindKind) *link {
	return &link{c: c, idx: idx, kind: kind, log: c.log.With("link", idx, "bind", kind.String()),
		window: make(chan struct{}, c.cfg.Window), pending: map[uint32]chan response{}}
}

// nextSeq returns the next sequence number in 1..0x7FFFFFFF (SMPP 3.4 §3.2).
func (l *link) nextSeq() uint32 {
	for {
		v := l.seq.Add(1) & 0x7FFFFFFF
		if v != 0 {
			return v
		}
	}
}

// run keeps the link bound until ctx ends, rebinding with exponential backoff.
func (l *link) run(ctx context.Context) {
	backoff := l.c.cfg.RebindMin
	for ctx.Err() == nil {
		start := time.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = l.c.cfg.RebindMin
		}
		l.log.Warn("smpp link down; rebinding", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, l.c.cfg.RebindMax)
	}
}

// session connects, binds, serves until the connection fails or ctx ends, and unbinds.
func (l *link) session(ctx context.Context) error {
	cfg := &l.c.cfg
	d := net.Dialer{Timeout: cfg.ResponseTimeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", cfg.Address, err)
	}
	defer conn.Close()
	if err := l.bind(conn); err != nil {
		return err
	}
	// From here on every write goes through the coalescing writer (one syscall for the
	// PDUs queued while the previous write ran).
	conn = newConnWriter(conn, cfg.ResponseTimeout)
	l.mu.Lock()
	l.conn = conn
	l.mu.Unlock()
	l.bound.Store(true)
	l.c.boundChanged()
	l.log.Info("smpp link bound", "address", cfg.Address, "system_id", cfg.SystemID)

	readErr := make(chan error, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readErr <- l.readLoop(ctx, conn)
	}()
	ticker := time.NewTicker(cfg.EnquireLink)
	defer ticker.Stop()
	defer func() {
		_ = conn.Close()
		<-readDone
		l.teardown()
	}()
	for {
		select {
		case err := <-readErr:
			return err
		case <-ticker.C:
			// SMPP 3.4 §4.11: enquire_link checks the peer is alive; no answer means the
			// connection is dead and the link rebinds.
			if _, err := l.call(ctx, func(seq uint32) ([]byte, error) {
				return encodeHeaderOnly(cmdEnquireLink, 0, seq), nil
			}, false); err != nil {
				return fmt.Errorf("enquire_link: %w", err)
			}
		case <-ctx.Done():
			// No new submits here; those in flight get their answers before the unbind
			// (SMPP 3.4 §4.2), so a link handed to another node sends nothing twice.
			l.bound.Store(false)
			l.c.boundChanged()
			if !errors.Is(context.Cause(ctx), errLeaseLost) {
				l.settle(min(cfg.ResponseTimeout, 2*time.Second))
			}
			uctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = l.call(uctx, func(seq uint32) ([]byte, error) { return encodeHeaderOnly(cmdUnbind, 0, seq), nil }, false)
			cancel()
			return ctx.Err()
		}
	}
}

// settle waits, up to d, until no windowed request awaits its response.
func (l *link) settle(d time.Duration) {
	deadline := time.Now().Add(d)
	for len(l.window) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// bind sends bind_transceiver and waits for its response on the bare connection.
func (l *link) bind(conn net.Conn) error {
	cfg := &l.c.cfg
	seq := l.nextSeq()
	_ = conn.SetDeadline(time.Now().Add(cfg.ResponseTimeout))
	defer conn.SetDeadline(time.Time{}) //nolint:errcheck // best effort reset
	if _, err := conn.Write(encodeBind(l.kind, cfg.SystemID, cfg.Password, cfg.SystemType, seq)); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	for {
		h, _, err := readPDU(conn)
		if err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if h.seq != seq || (h.id != l.kind.respID() && h.id != cmdGenericNack) {
			continue
		}
		if h.status != statusOK {
			return fmt.Errorf("bind refused: %s", StatusName(h.status))
		}
		return nil
	}
}

// teardown marks the link unbound and fails every request in flight as transient.
func (l *link) teardown() {
	l.bound.Store(false)
	l.c.boundChanged()
	l.mu.Lock()
	l.conn = nil
	for seq, ch := range l.pending {
		ch <- response{h: header{status: statusConnClosed}}
		delete(l.pending, seq)
	}
	l.mu.Unlock()
}

func (l *link) write(conn net.Conn, b []byte) error {
	if cw, ok := conn.(*connWriter); ok {
		return cw.write(b)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(l.c.cfg.ResponseTimeout))
	_, err := conn.Write(b)
	return err
}

// connWriter is a bound connection whose writes are coalesced: a PDU written while another
// write is in progress joins the next batch, which its first writer sends in one syscall once
// the previous write returned. Under load the SMSC then reads many PDUs per segment too.
// Every writer returns when its own bytes were written (or the write failed).
type connWriter struct {
	net.Conn
	timeout time.Duration

	mu   sync.Mutex
	idle *sync.Cond  // signalled when busy clears
	busy bool        // a batch is being written
	next *writeBatch // the batch accumulating meanwhile
}

type writeBatch struct {
	buf  []byte
	done chan struct{}
	err  error
}

func newConnWriter(conn net.Conn, timeout time.Duration) *connWriter {
	w := &connWriter{Conn: conn, timeout: timeout}
	w.idle = sync.NewCond(&w.mu)
	return w
}

func (w *connWriter) write(b []byte) error {
	w.mu.Lock()
	if wb := w.next; wb != nil {
		wb.buf = append(wb.buf, b...)
		w.mu.Unlock()
		<-wb.done
		return wb.err
	}
	wb := &writeBatch{buf: append(make([]byte, 0, max(len(b), 512)), b...), done: make(chan struct{})}
	w.next = wb
	for w.busy {
		w.idle.Wait()
	}
	w.busy, w.next = true, nil
	w.mu.Unlock()
	_ = w.SetWriteDeadline(time.Now().Add(w.timeout))
	_, wb.err = w.Conn.Write(wb.buf)
	close(wb.done)
	w.mu.Lock()
	w.busy = false
	w.idle.Signal()
	w.mu.Unlock()
	return wb.err
}

// waitRate spaces sends 1/MaxRate apart (SMSCs answer bursts over contract with
// ESME_RTHROTTLED).
func (l *link) waitRate(ctx context.Context) error {
	if l.c.cfg.MaxRate <= 0 {
		return nil
	}
	gap := time.Duration(float64(time.Second) / l.c.cfg.MaxRate)
	l.rmu.Lock()
	now := time.Now()
	at := l.nextSend
	if at.Before(now) {
		at = now
	}
	l.nextSend = at.Add(gap)
	l.rmu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// errNotBound is returned by call on an unbound link.
var errNotBound = errors.New("smpp: link not bound")

// call sends one request and waits for its response. With windowed, it first takes a window
// slot (waiting, never dropping) and the rate limit. A missing response after
// ResponseTimeout yields statusTimeout; a closed link statusConnClosed.
func (l *link) call(ctx context.Context, build func(seq uint32) ([]byte, error), windowed bool) (response, error) {
	if windowed {
		select {
		case l.window <- struct{}{}:
		case <-ctx.Done():
			return response{}, ctx.Err()
		}
		defer func() { <-l.window }()
		if err := l.waitRate(ctx); err != nil {
			return response{}, err
		}
	}
	seq := l.nextSeq()
	b, err := build(seq)
	if err != nil {
		return response{}, err
	}
	ch := make(chan response, 1)
	l.mu.Lock()
	conn := l.conn
	if conn == nil {
		l.mu.Unlock()
		return response{}, errNotBound
	}
	l.pending[seq] = ch
	l.mu.Unlock()
	if err := l.write(conn, b); err != nil {
		l.forget(seq)
		_ = conn.Close()
		return response{}, errNotBound // nothing was sent: safe to try another link
	}
	t := time.NewTimer(l.c.cfg.ResponseTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-t.C:
		l.forget(seq)
		return response{h: header{status: statusTimeout}}, nil
	case <-ctx.Done():
		l.forget(seq)
		return response{}, ctx.Err()
	}
}

func (l *link) forget(seq uint32) {
	l.mu.Lock()
	delete(l.pending, seq)
	l.mu.Unlock()
}

// minInboundInFlight is the fewest deliver_sm a link works on at once (the window when
// larger). Each waits for a shared commit (internal/sms), so more at once make fewer, larger
// commits: with an SMSC that sends faster than one window per commit, inbound messages and
// receipts are recorded several times faster than with a window of 10 or 50. The SMSC's own
// window still bounds what it sends unanswered.
const minInboundInFlight = 256

// readLoop reads PDUs until the connection fails. Responses go to their waiting request;
// requests from the SMSC are answered here (SMPP 3.4 §2.7, §4.11, §4.2) or handed to the
// inbound workers (deliver_sm).
func (l *link) readLoop(ctx context.Context, conn net.Conn) error {
	inflight := make(chan struct{}, max(l.c.cfg.Window, minInboundInFlight))
	var wg sync.WaitGroup
	defer wg.Wait()
	br := bufio.NewReaderSize(conn, 64<<10) // one read syscall for many PDUs under load
	for {
		h, body, err := readPDU(br)
		if errors.Is(err, errFrame) {
			// SMPP 3.4 §3.3: generic_nack with ESME_RINVCMDLEN; the stream cannot be
			// resynchronised after a bad command_length, so the link rebinds.
			_ = l.write(conn, encodeHeaderOnly(cmdGenericNack, statusInvCmdLen, 0))
			_ = conn.Close()
			return fmt.Errorf("command_length %d out of range", h.length)
		}
		if err != nil {
			_ = conn.Close()
			return err
		}
		if h.id&0x80000000 != 0 {
			l.mu.Lock()
			ch, ok := l.pending[h.seq]
			delete(l.pending, h.seq)
			l.mu.Unlock()
			if ok {
				ch <- response{h: h, body: body}
			} else if h.id == cmdGenericNack {
				l.log.Warn("smpp generic_nack from SMSC", "status", StatusName(h.status), "seq", h.seq)
			}
			if h.id == cmdUnbindResp {
				_ = conn.Close()
				return errors.New("unbound")
			}
			continue
		}
		switch h.id {
		case cmdEnquireLink:
			err = l.write(conn, encodeHeaderOnly(cmdEnquireLinkResp, statusOK, h.seq))
		case cmdUnbind:
			// SMPP 3.4 §4.2: answer unbind_resp, then the SMSC closes; telgw rebinds.
			_ = l.write(conn, encodeHeaderOnly(cmdUnbindResp, statusOK, h.seq))
			_ = conn.Close()
			return errors.New("SMSC unbound")
		case cmdDeliverSM:
			select {
			case inflight <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-inflight }()
				status := l.c.handleDeliverSM(ctx, body, l.log)
				if status == statusInvCmdLen {
					_ = l.write(conn, encodeHeaderOnly(cmdGenericNack, status, h.seq))
					return
				}
				_ = l.write(conn, encodeDeliverSMResp(status, h.seq))
			}()
		case cmdAlertNotification:
			// SMPP 3.4 §4.12: no response is sent.
		default:
			// SMPP 3.4 §3.3: generic_nack for a command telgw does not support; the bind stays.
			l.log.Warn("smpp unsupported command from SMSC", "command_id", fmt.Sprintf("%#08x", h.id))
			err = l.write(conn, encodeHeaderOnly(cmdGenericNack, statusInvCmdID, h.seq))
		}
		if err != nil {
			_ = conn.Close()
			return err
		}
	}
}
