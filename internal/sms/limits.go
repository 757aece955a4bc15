package sms

import "context"

// SendLimiter admits a send request's messages before they are queued: the fraud policy's kill
// switch and messages per day of the sender (internal/policy.SMSGate). Its error, a
// *problem.Error (Forbidden, TooMany), refuses the whole request.
type SendLimiter interface {
	AdmitSMS(ctx context.Context, from string, n int) error
}
