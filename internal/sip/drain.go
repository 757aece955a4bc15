package sip

import (
	"context"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Draining (SIGTERM on a node behind a dispatcher): the node stops taking new work while its
// calls run to their end.
//   - OPTIONS is answered 503 (RFC 3261 §21.5.4), so the dispatcher's probe (Kamailio
//     dispatcher, ds_ping) marks the node down and sends new calls elsewhere;
//   - new INVITEs and REGISTERs are answered 503 with Retry-After: a dispatcher fails over
//     to another node on 503 (in-dialog requests of calls in progress are served as always);
//   - WebSocket connections that carry no call are closed with status 1012 (Service Restart,
//     RFC 6455 §7.4 and the IANA WebSocket Close Code registry): the client reconnects, through
//     the load balancer, to another node and registers there. Connections with a call in
//     progress are closed once the call ends.

// drainable wraps h so that, while the service drains, out-of-dialog requests are answered
// 503 (in-dialog requests, with a To tag, go on to h).
func (s *Service) drainable(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if s.draining.Load() {
			if to := req.To(); to == nil || !to.Params.Has("tag") {
				respond(tx, req, 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
				return
			}
		}
		h(req, tx)
	}
}

// Draining reports whether Drain was called.
func (s *Service) Draining() bool { return s.draining.Load() }

// Drain stops taking new calls and registrations, closes idle WebSocket connections with a
// reconnect hint, and waits until no call is in progress or ctx ends (the caller then stops
// the service, which hangs up whatever is left). It returns the calls still up.
func (s *Service) Drain(ctx context.Context) int {
	s.draining.Store(true)
	s.log.Info("sip draining", "calls", s.ActiveCalls())
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.table.active()
		s.users.closeIdle(s.table) // after the count: the last call's connection closes too
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

// wsConns tracks the WebSocket connections of users (for Drain).
type wsConns struct {
	mu    sync.Mutex
	conns map[*bindingConn]struct{}
}

func (w *wsConns) add(c *bindingConn) {
	w.mu.Lock()
	if w.conns == nil {
		w.conns = map[*bindingConn]struct{}{}
	}
	w.conns[c] = struct{}{}
	w.mu.Unlock()
}

func (w *wsConns) remove(c *bindingConn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

// wsClose1012 is an unmasked server Close frame (RFC 6455 §5.5.1) with status 1012, Service
// Restart: "the service is restarted; a client may reconnect".
var wsClose1012 = []byte{0x88, 0x02, 0x03, 0xf4}

// closeIdle closes the users' WebSocket connections that carry no call in progress.
func (s *userSide) closeIdle(t *callTable) {
	s.ws.mu.Lock()
	var idle []*bindingConn
	for c := range s.ws.conns {
		if !t.busy(c.RemoteAddr().String()) {
			idle = append(idle, c)
		}
	}
	s.ws.mu.Unlock()
	for _, c := range idle {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(wsClose1012)
		_ = c.Close()
	}
}
