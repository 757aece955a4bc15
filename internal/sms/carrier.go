package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/telgw/telgw/internal/sms/receipt"
)

// Outbound is one message to one recipient, as handed to a carrier.
type Outbound struct {
	// MessageID is telgw's id of the message (for logs).
	MessageID string
	// From and To are E.164 numbers.
	From, To string
	// Text is the message body.
	Text string
	// DeliveryReport asks the carrier for receipts (SMPP registered_delivery).
	DeliveryReport bool
	// Validity bounds how long the carrier keeps trying; 0 is the carrier's default.
	Validity time.Duration
}

// SubmitResult is what a carrier accepted.
type SubmitResult struct {
	// CarrierIDs are the carrier's ids of the accepted parts, in part order.
	CarrierIDs []string
	// Segments is how many parts the message was sent in.
	Segments int
}

// Carrier sends messages to the network and takes what the network sends back: an SMPP link
// set or an HTTP connector. Service.Run runs every carrier with the service as its handler.
type Carrier interface {
	// Name is the carrier's configured name.
	Name() string
	// Submit sends msg and returns once the carrier accepted or refused every part. Errors
	// are *SubmitError when the carrier answered, so callers can tell transient from permanent.
	Submit(ctx context.Context, msg Outbound) (SubmitResult, error)
	// Run keeps the carrier connected and hands its inbound messages and receipts to h until
	// ctx ends.
	Run(ctx context.Context, h CarrierHandler) error
}

// Windowed is a Carrier that pipelines submissions (SMPP): Window is how many may await the
// carrier's answer at once. The Service's InFlight defaults to the sum over its carriers.
type Windowed interface {
	Window() int
}

// Readier is a Carrier that knows whether it can submit now (SMPP: a link is bound). Its
// sender claims no messages while it is not ready, so they stay queued (and an opt-out that
// arrives meanwhile still stops them) instead of waiting inside Submit.
type Readier interface {
	Ready() bool
}

// SubmitError is a carrier's refusal of a submission.
type SubmitError struct {
	// Code is the carrier's status (SMPP command_status, HTTP status…).
	Code uint32
	// Temporary means the same submission may succeed later (throttling, queue full, timeout,
	// no bind); otherwise it never will.
	Temporary bool
	// Reason is a human-readable description.
	Reason string
	// Accepted lists carrier ids of parts that were accepted before the failure.
	Accepted []string
}

// Error implements error.
func (e *SubmitError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	return fmt.Sprintf("%s carrier error %#x: %s", kind, e.Code, e.Reason)
}

// IsTemporary reports whether err is worth retrying: a temporary *SubmitError, or any error
// that is not a *SubmitError (network trouble, context expiry).
func IsTemporary(err error) bool {
	var se *SubmitError
	if errors.As(err, &se) {
		return se.Temporary
	}
	return err != nil
}

// Inbound is a (reassembled) message received from a carrier.
type Inbound struct {
	// Carrier is the carrier's name.
	Carrier string
	// From and To as the carrier gave them (E.164 when the carrier said international).
	From, To string
	// Text is the decoded message.
	Text string
	// Segments is how many parts it came in; Missing counts parts that never arrived.
	Segments, Missing int
	// ReceivedAt is when telgw got the (last) part.
	ReceivedAt time.Time
}

// Receipt is a delivery receipt from a carrier.
type Receipt struct {
	// Carrier is the carrier's name.
	Carrier string
	// Receipt is the parsed receipt.
	receipt.Receipt
	// ReceivedAt is when telgw got it.
	ReceivedAt time.Time
}

// CarrierHandler takes what carriers receive. Returning an error asks the carrier to
// redeliver (SMPP: deliver_sm_resp with ESME_RX_T_APPN), so an error must mean nothing was
// recorded.
type CarrierHandler interface {
	// HandleInbound records an inbound message.
	HandleInbound(ctx context.Context, m Inbound) error
	// HandleReceipt records a delivery receipt.
	HandleReceipt(ctx context.Context, r Receipt) error
}
