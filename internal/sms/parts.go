package sms

import (
	"context"
	"time"

	"github.com/telgw/telgw/internal/sms/gsm"
)

// InboundKey identifies one concatenated inbound message at a carrier: originator,
// recipient, reference number and part count (TS 23.040 §9.2.3.24.1 and §9.2.3.24.8, SMPP 3.4
// §5.3.2.22–24). An 8-bit and a 16-bit reference with the same value are different messages.
type InboundKey struct {
	Carrier  string
	From, To string
	Ref      uint16
	Ref16    bool
	Total    int
}

// InboundPart is one received part of a concatenated inbound message, user data header
// removed.
type InboundPart struct {
	InboundKey
	// Seq is the part's 1-based number, at most Total.
	Seq int
	// Coding is the part's data_coding.
	Coding gsm.Coding
	// Data is the part's user data.
	Data []byte
	// ReceivedAt is when telgw got the part.
	ReceivedAt time.Time
}

// InboundClaim is a concatenated message one receiver took to deliver: complete, or
// incomplete after the reassembly timeout. Until the claim is done, released or has lapsed,
// no other receiver on any node delivers the message.
type InboundClaim struct {
	Key InboundKey
	// Token identifies the claim for PartsDone and PartsRelease.
	Token string
	// Parts are the claimed parts in sequence order; a timed-out message has gaps.
	Parts []InboundPart
}

// Message joins the claimed parts (gsm.Join): the whole message, or a partial one with
// Missing set.
func (c InboundClaim) Message() gsm.Message {
	parts := make([]gsm.Part, len(c.Parts))
	for i, p := range c.Parts {
		parts[i] = gsm.Part{From: p.From, To: p.To, Coding: p.Coding, Data: p.Data,
			Concat: gsm.ConcatInfo{Ref: p.Ref, Ref16: p.Ref16, Total: uint8(p.Total), Seq: uint8(p.Seq)}}
	}
	return gsm.Join(c.Key.From, c.Key.To, c.Key.Total, parts)
}

// InboundPartAddParams is a part to record and the claim to take if it completes its message.
type InboundPartAddParams struct {
	Part InboundPart
	// Token names the claim taken when the part completes its message.
	Token string
	// ClaimUntil is when that claim lapses if the claimer neither finishes nor releases it
	// (it died): the sweeper then takes the message over.
	ClaimUntil time.Time
}

// InboundClaimParams selects the messages a sweeper takes over.
type InboundClaimParams struct {
	// Carrier limits the sweep to one carrier's messages.
	Carrier string
	// StartedBefore claims incomplete messages whose first part arrived before it (the
	// reassembly timeout has passed).
	StartedBefore time.Time
	// Now is the current time: claims that lapsed before it are taken over, and complete
	// messages nobody holds are claimed whenever their parts arrived.
	Now time.Time
	// Token and ClaimUntil are the new claims' token and lapse time.
	Token      string
	ClaimUntil time.Time
	// Limit caps the messages claimed; default 100.
	Limit int
}

// PartStore keeps the parts of concatenated inbound messages until the whole message is
// delivered, so that a part acknowledged to the carrier survives a crash (kill -9) and parts
// of one message may arrive on binds of different nodes sharing the store. Implementations:
// internal/store.
type PartStore interface {
	// InboundPartAdd durably records a part (a repeated part replaces the earlier copy) and,
	// in the same transaction, checks whether its message is now complete. When it is and no
	// other receiver holds it, the message is claimed with p.Token and returned with ok true:
	// exactly one receiver among concurrent ones gets it.
	InboundPartAdd(ctx context.Context, p InboundPartAddParams) (c InboundClaim, ok bool, err error)
	// InboundPartsClaim claims messages nobody holds (or whose claim lapsed) that are
	// complete or whose first part is older than p.StartedBefore, oldest first.
	InboundPartsClaim(ctx context.Context, p InboundClaimParams) ([]InboundClaim, error)
	// InboundPartsDone deletes the claimed parts once the message's delivery committed.
	// Parts that arrived after the claim stay (a new message with a reused reference). A
	// claim that lapsed and was taken over deletes nothing.
	InboundPartsDone(ctx context.Context, c InboundClaim) error
	// InboundPartsRelease gives up a claim whose delivery failed, so that the message can be
	// claimed again at once.
	InboundPartsRelease(ctx context.Context, c InboundClaim) error
}
