package gsm

import (
	"container/list"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Part is one received part of a possibly concatenated message, with its user data header
// already removed.
type Part struct {
	// From and To are the originator and recipient; parts only join when both match.
	From, To string
	// Concat is the part's concatenation element; a zero Total means the part stands alone.
	Concat ConcatInfo
	// Coding is the part's data_coding.
	Coding Coding
	// Data is the part's user data without header.
	Data []byte
}

// Message is a reassembled (or timed-out partial) inbound message.
type Message struct {
	// From and To are copied from the parts.
	From, To string
	// Text is the decoded message; missing parts of a partial message are left out.
	Text string
	// Segments counts the parts the message was sent in (the concatenation's total).
	Segments int
	// Missing counts the parts that never arrived (non-zero only for timed-out messages).
	Missing int
}

type pendingKey struct {
	from, to string
	ref      uint16
	ref16    bool
	total    uint8
}

type pending struct {
	key     pendingKey
	parts   map[uint8]Part
	started time.Time
	elem    *list.Element
}

// Reassembler joins the parts of concatenated messages (UDH 8/16-bit reference, SAR TLVs,
// TS 23.040 §9.2.3.24.1 and SMPP 3.4 §5.3.2.22–24) and gives up on messages whose parts do not
// all arrive within a timeout. It is safe for concurrent use.
type Reassembler struct {
	mu         sync.Mutex
	timeout    time.Duration
	maxPending int
	pending    map[pendingKey]*pending
	order      *list.List // oldest first
	evicted    []Message
}

// NewReassembler returns a Reassembler that gives up on a message timeout after its first
// part (default 5 minutes) and holds at most maxPending incomplete messages (default 10,000),
// evicting the oldest as partial when full.
func NewReassembler(timeout time.Duration, maxPending int) *Reassembler {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	if maxPending <= 0 {
		maxPending = 10000
	}
	return &Reassembler{timeout: timeout, maxPending: maxPending, pending: map[pendingKey]*pending{}, order: list.New()}
}

// Add records p. It returns the whole message and true when p completes it (or stands alone).
// A repeated part replaces the earlier copy.
func (r *Reassembler) Add(now time.Time, p Part) (Message, bool) {
	if p.Concat.Total <= 1 || p.Concat.Seq == 0 || p.Concat.Seq > p.Concat.Total {
		return Message{From: p.From, To: p.To, Text: Decode(p.Coding, p.Data), Segments: 1}, true
	}
	k := pendingKey{from: p.From, to: p.To, ref: p.Concat.Ref, ref16: p.Concat.Ref16, total: p.Concat.Total}
	r.mu.Lock()
	defer r.mu.Unlock()
	pm := r.pending[k]
	if pm == nil {
		if len(r.pending) >= r.maxPending {
			oldest := r.order.Front().Value.(*pending)
			r.evicted = append(r.evicted, r.removeLocked(oldest))
		}
		pm = &pending{key: k, parts: map[uint8]Part{}, started: now}
		pm.elem = r.order.PushBack(pm)
		r.pending[k] = pm
	}
	pm.parts[p.Concat.Seq] = p
	if len(pm.parts) < int(k.total) {
		return Message{}, false
	}
	return r.removeLocked(pm), true
}

// Expire removes and returns, as partial messages, those whose first part is older than the
// timeout, plus any evicted for room since the last call.
func (r *Reassembler) Expire(now time.Time) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evicted
	r.evicted = nil
	for e := r.order.Front(); e != nil; {
		pm := e.Value.(*pending)
		if now.Sub(pm.started) < r.timeout {
			break
		}
		e = e.Next()
		out = append(out, r.removeLocked(pm))
	}
	return out
}

// Pending reports how many incomplete messages are held.
func (r *Reassembler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// removeLocked drops pm and joins what it has.
func (r *Reassembler) removeLocked(pm *pending) Message {
	delete(r.pending, pm.key)
	r.order.Remove(pm.elem)
	parts := make([]Part, 0, len(pm.parts))
	for _, p := range pm.parts {
		parts = append(parts, p)
	}
	return Join(pm.key.from, pm.key.to, int(pm.key.total), parts)
}

// Join assembles the parts of one concatenated message of total parts sent from from to to,
// in sequence order whatever order parts is in; parts that are absent count as Missing. Parts
// of one coding are joined before decoding so that an escape or surrogate pair split by the
// sender still decodes; mixed codings are decoded part by part. A part repeated in parts
// counts once (the last copy wins).
func Join(from, to string, total int, parts []Part) Message {
	bySeq := make(map[int]Part, len(parts))
	for _, p := range parts {
		bySeq[int(p.Concat.Seq)] = p
	}
	msg := Message{From: from, To: to, Segments: total}
	var coding Coding
	mixed := false
	first := true
	for seq := 1; seq <= total; seq++ {
		p, ok := bySeq[seq]
		if !ok {
			continue
		}
		if first {
			coding, first = p.Coding, false
		} else if p.Coding != coding {
			mixed = true
		}
	}
	var sb strings.Builder
	var joined []byte
	for seq := 1; seq <= total; seq++ {
		p, ok := bySeq[seq]
		if !ok {
			msg.Missing++
			continue
		}
		if mixed {
			sb.WriteString(Decode(p.Coding, p.Data))
		} else {
			joined = append(joined, p.Data...)
		}
	}
	if mixed {
		msg.Text = sb.String()
	} else {
		msg.Text = Decode(coding, joined)
	}
	return msg
}

// String describes a part for logs.
func (p Part) String() string {
	return fmt.Sprintf("part %d/%d ref %d from %s to %s", p.Concat.Seq, p.Concat.Total, p.Concat.Ref, p.From, p.To)
}
