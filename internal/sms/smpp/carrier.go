package smpp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/gsm"
)

// claimLease is how long a receiver holds a completed (or timed-out) inbound message while it
// delivers it; a receiver that dies holding one leaves it to another node's sweeper after
// this. Delivery is abandoned after half of it, so a slow receiver does not race the sweeper.
const claimLease = time.Minute

// Carrier is a set of SMPP links to one SMSC. It implements sms.Carrier.
type Carrier struct {
	cfg   Config
	log   *slog.Logger
	links []*link
	rr    atomic.Uint32
	ref   atomic.Uint32
	reasm *gsm.Reassembler
	parts sms.PartStore      // nil: parts are kept in reasm only
	h     sms.CarrierHandler // set by Run before any link starts
	// leases, when set (UseLeases), gates every bind on a slot of the cluster's lease.
	leases Leases

	bmu       sync.Mutex
	boundCh   chan struct{} // closed and replaced whenever a link's bound state changes
	now       func() time.Time
	submitted atomic.Int64
}

var (
	_ sms.Carrier  = (*Carrier)(nil)
	_ sms.Windowed = (*Carrier)(nil)
	_ sms.Readier  = (*Carrier)(nil)
)

// New validates cfg and builds a Carrier; Run connects it.
func New(cfg Config) (*Carrier, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("smpp carrier %q: %w", cfg.Name, err)
	}
	c := &Carrier{cfg: cfg, log: cfg.Logger.With("carrier", cfg.Name), boundCh: make(chan struct{}),
		reasm: gsm.NewReassembler(cfg.ReassemblyTimeout, 0), parts: cfg.Parts, now: time.Now}
	kind := bindTRX
	if cfg.BindMode == "txrx" {
		kind = bindTX
	}
	for i := range cfg.Links {
		c.links = append(c.links, newLink(c, i, kind))
	}
	if kind == bindTX {
		c.links = append(c.links, newLink(c, cfg.Links, bindRX))
	}
	return c, nil
}

// Name implements sms.Carrier.
func (c *Carrier) Name() string { return c.cfg.Name }

// Bound reports how many links are bound now.
func (c *Carrier) Bound() int {
	n := 0
	for _, l := range c.links {
		if l.bound.Load() {
			n++
		}
	}
	return n
}

// Ready reports whether a link that submits is bound (sms.Readier).
func (c *Carrier) Ready() bool {
	for _, l := range c.links {
		if l.kind != bindRX && l.bound.Load() {
			return true
		}
	}
	return false
}

// Submitted counts submit_sm PDUs the SMSC accepted since start.
func (c *Carrier) Submitted() int64 { return c.submitted.Load() }

// Window is how many submit_sm may await their responses at once, over every link (sms.Windowed).
func (c *Carrier) Window() int { return c.cfg.Window * c.cfg.Links }

// Run holds every link bound (with UseLeases, those whose slots this node holds) until ctx
// ends, then unbinds them (sms.Carrier). Inbound messages
// and receipts go to h, timed-out partial inbound messages as they expire.
func (c *Carrier) Run(ctx context.Context, h sms.CarrierHandler) error {
	if h == nil {
		return fmt.Errorf("smpp carrier %q: no handler", c.cfg.Name)
	}
	c.h = h
	var wg sync.WaitGroup
	if c.leases != nil {
		wg.Go(func() { c.runLeased(ctx) })
	} else {
		for _, l := range c.links {
			wg.Go(func() { l.run(ctx) })
		}
	}
	wg.Go(func() {
		t := time.NewTicker(min(c.cfg.ReassemblyTimeout/4, 10*time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if c.parts != nil {
					c.sweepParts(ctx)
					continue
				}
				for _, m := range c.reasm.Expire(c.now()) {
					c.log.Warn("inbound message incomplete after timeout", "from", m.From, "to", m.To, "missing", m.Missing)
					_ = c.deliverInbound(ctx, m)
				}
			}
		}
	})
	wg.Wait()
	return nil
}

// sweepParts delivers the stored messages this node claims: incomplete ones whose first part
// is older than the reassembly timeout (as partial messages, the parts that never arrived
// left out) and complete ones whose receiver died or failed before delivering them.
func (c *Carrier) sweepParts(ctx context.Context) {
	for ctx.Err() == nil {
		now := c.now()
		const batch = 100
		claims, err := c.parts.InboundPartsClaim(ctx, sms.InboundClaimParams{Carrier: c.cfg.Name, Now: now,
			StartedBefore: now.Add(-c.cfg.ReassemblyTimeout), Token: uuid.NewString(), ClaimUntil: now.Add(claimLease), Limit: batch})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("claiming timed-out inbound messages failed", "err", err)
			}
			return
		}
		for _, cl := range claims {
			_ = c.deliverClaim(ctx, cl)
		}
		if len(claims) < batch {
			return
		}
	}
}

// storePart records one part of a concatenated message durably and, when it completes the
// message and this receiver won the claim, delivers the message. The returned command_status
// is statusOK only once the part is stored (and, for the completing part, the message
// delivered), so the SMSC redelivers anything telgw might not have.
func (c *Carrier) storePart(ctx context.Context, p gsm.Part, now time.Time, log *slog.Logger) uint32 {
	ip := sms.InboundPart{InboundKey: sms.InboundKey{Carrier: c.cfg.Name, From: p.From, To: p.To, Ref: p.Concat.Ref,
		Ref16: p.Concat.Ref16, Total: int(p.Concat.Total)}, Seq: int(p.Concat.Seq), Coding: p.Coding, Data: p.Data, ReceivedAt: now}
	cl, ok, err := c.parts.InboundPartAdd(ctx, sms.InboundPartAddParams{Part: ip, Token: uuid.NewString(), ClaimUntil: now.Add(claimLease)})
	if err != nil {
		log.Error("storing inbound message part failed; asking the SMSC to retry", "err", err, "part", p.String())
		return statusRxTAppn
	}
	if !ok {
		return statusOK
	}
	if err := c.deliverClaim(ctx, cl); err != nil {
		return statusRxTAppn
	}
	return statusOK
}

// deliverClaim hands a claimed message to the handler, then deletes its parts. When the
// handler fails the claim is released, so the SMSC's retry of the part (or the sweeper)
// delivers it again.
func (c *Carrier) deliverClaim(ctx context.Context, cl sms.InboundClaim) error {
	m := cl.Message()
	if m.Missing > 0 {
		c.log.Warn("inbound message incomplete after timeout", "from", m.From, "to", m.To, "missing", m.Missing)
	}
	dctx, cancel := context.WithTimeout(ctx, claimLease/2)
	err := c.deliverInbound(dctx, m)
	cancel()
	// The parts' bookkeeping outlives a shutdown that interrupted the delivery.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		if rerr := c.parts.InboundPartsRelease(bctx, cl); rerr != nil {
			c.log.Warn("releasing inbound message failed; it is retried when its claim lapses", "err", rerr, "from", m.From)
		}
		return err
	}
	if err := c.parts.InboundPartsDone(bctx, cl); err != nil {
		// The message is recorded; its parts stay until the claim lapses, when it is
		// delivered a second time.
		c.log.Error("deleting delivered inbound message parts failed", "err", err, "from", m.From)
	}
	return nil
}

func (c *Carrier) boundChanged() {
	c.cfg.Metrics.bound.WithLabelValues(c.cfg.Name).Set(float64(c.Bound()))
	c.bmu.Lock()
	close(c.boundCh)
	c.boundCh = make(chan struct{})
	c.bmu.Unlock()
}

// pick returns a bound link, round robin, waiting up to BindWait for one.
func (c *Carrier) pick(ctx context.Context) *link {
	deadline := time.NewTimer(c.cfg.BindWait)
	defer deadline.Stop()
	for {
		c.bmu.Lock()
		ch := c.boundCh
		c.bmu.Unlock()
		n := uint32(len(c.links))
		start := c.rr.Add(1)
		for i := range n {
			if l := c.links[(start+i)%n]; l.kind != bindRX && l.bound.Load() {
				return l
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// Submit implements sms.Carrier: it encodes msg (GSM-7 or UCS-2), splits it per the
// carrier's concatenation method and sends one submit_sm per part with its own sequence
// number, each through the window. Addresses go as TON/NPI 1/1 (SMPP 3.4 §5.2.5–6);
// registered_delivery is 1 (SMSC delivery receipt on success or failure, §5.2.17) when a
// report is asked.
func (c *Carrier) Submit(ctx context.Context, msg sms.Outbound) (sms.SubmitResult, error) {
	enc, err := gsm.Encode(msg.Text, c.cfg.Concat)
	if err != nil {
		return sms.SubmitResult{}, &sms.SubmitError{Code: statusInvMsgLen, Reason: err.Error()}
	}
	srcTON, srcNPI, src := smppAddr(msg.From)
	dstTON, dstNPI, dst := smppAddr(msg.To)
	var reg byte
	if msg.DeliveryReport {
		reg = 1
	}
	ref := uint16(c.ref.Add(1))
	total := len(enc.Parts)
	res := sms.SubmitResult{Segments: total}
	for i, ud := range enc.Parts {
		p := submitPart{serviceType: c.cfg.ServiceType, srcTON: srcTON, srcNPI: srcNPI, src: src,
			dstTON: dstTON, dstNPI: dstNPI, dst: dst, registeredDelivery: reg,
			validity: relativeValidity(msg.Validity), dataCoding: byte(enc.Coding), ud: ud}
		switch {
		case c.cfg.Concat == gsm.ConcatPayload:
			p.payload = true
		case total > 1 && c.cfg.Concat == gsm.ConcatSAR:
			p.sar = &sar{ref: ref, total: byte(total), seqNo: byte(i + 1)}
		case total > 1:
			p.udh = gsm.UDH(c.cfg.Concat, ref, total, i+1)
		}
		id, err := c.submitPart(ctx, p)
		if err != nil {
			if se, ok := err.(*sms.SubmitError); ok {
				se.Accepted = res.CarrierIDs
			}
			return res, err
		}
		res.CarrierIDs = append(res.CarrierIDs, id)
	}
	return res, nil
}

func (c *Carrier) submitPart(ctx context.Context, p submitPart) (id string, err error) {
	start := time.Now()
	defer func() {
		result := "ok"
		if err != nil {
			result = "permanent"
			if sms.IsTemporary(err) {
				result = "temporary"
			}
		}
		c.cfg.Metrics.submits.WithLabelValues(c.cfg.Name, result).Inc()
		c.cfg.Metrics.latency.WithLabelValues(c.cfg.Name).Observe(time.Since(start).Seconds())
	}()
	var r response
	// A link that went down before the PDU was written is skipped; once written, a lost
	// response is the caller's to retry (it may have been accepted).
	for range 3 {
		l := c.pick(ctx)
		if l == nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", &sms.SubmitError{Code: statusNoBind, Temporary: true, Reason: "no SMPP link bound"}
		}
		r, err = l.call(ctx, func(seq uint32) ([]byte, error) { return encodeSubmitSM(p, seq) }, true)
		if err != errNotBound {
			break
		}
		l.bound.Store(false)
	}
	if err == errNotBound {
		return "", &sms.SubmitError{Code: statusNoBind, Temporary: true, Reason: "no SMPP link bound"}
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", &sms.SubmitError{Code: statusInvMsgLen, Reason: err.Error()}
	}
	if r.h.status != statusOK {
		return "", &sms.SubmitError{Code: r.h.status, Temporary: Temporary(r.h.status), Reason: StatusName(r.h.status)}
	}
	if r.h.id != cmdSubmitSMResp {
		return "", &sms.SubmitError{Code: statusSysErr, Reason: fmt.Sprintf("unexpected response %#08x to submit_sm", r.h.id)}
	}
	c.submitted.Add(1)
	return parseSubmitSMResp(r.body), nil
}

// handleDeliverSM processes one deliver_sm body and returns the command_status for its
// response (statusInvCmdLen asks for a generic_nack instead).
func (c *Carrier) handleDeliverSM(ctx context.Context, body []byte, log *slog.Logger) uint32 {
	d, err := decodeDeliverSM(body)
	if err != nil {
		log.Warn("malformed deliver_sm", "err", err, "len", len(body))
		c.cfg.Metrics.delivers.WithLabelValues(c.cfg.Name, "malformed").Inc()
		return statusInvCmdLen
	}
	now := c.now()
	if d.isReceipt() {
		r, err := d.receipt()
		if err != nil {
			// SMPP 3.4 §5.1.3 ESME_RX_P_APPN: a permanent rejection, so the SMSC does not
			// redeliver a receipt telgw can never read.
			log.Warn("unreadable delivery receipt", "err", err, "text", string(d.userData()))
			c.cfg.Metrics.delivers.WithLabelValues(c.cfg.Name, "refused").Inc()
			return 0x65
		}
		c.cfg.Metrics.delivers.WithLabelValues(c.cfg.Name, "receipt").Inc()
		if err := c.h.HandleReceipt(ctx, sms.Receipt{Carrier: c.cfg.Name, Receipt: r, ReceivedAt: now}); err != nil {
			log.Error("recording delivery receipt failed; asking the SMSC to retry", "err", err)
			return statusRxTAppn
		}
		return statusOK
	}
	c.cfg.Metrics.delivers.WithLabelValues(c.cfg.Name, "inbound").Inc()
	p, udhOK := d.part()
	if !udhOK {
		log.Warn("inbound deliver_sm with malformed user data header; delivering it as text", "from", p.From)
	}
	if c.parts != nil && p.Concat.Total > 1 && p.Concat.Seq >= 1 && p.Concat.Seq <= p.Concat.Total {
		return c.storePart(ctx, p, now, log)
	}
	m, done := c.reasm.Add(now, p)
	if !done {
		return statusOK
	}
	if err := c.deliverInbound(ctx, m); err != nil {
		return statusRxTAppn
	}
	return statusOK
}

func (c *Carrier) deliverInbound(ctx context.Context, m gsm.Message) error {
	in := sms.Inbound{Carrier: c.cfg.Name, From: m.From, To: m.To, Text: m.Text, Segments: m.Segments,
		Missing: m.Missing, ReceivedAt: c.now()}
	if err := c.h.HandleInbound(ctx, in); err != nil {
		c.log.Error("recording inbound message failed; asking the SMSC to retry", "err", err, "from", m.From)
		return err
	}
	return nil
}
